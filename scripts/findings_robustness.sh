#!/usr/bin/env bash
# Issue 15, question 3: robustness of the findings-sweep models to noisy and adversarial queries.
#
# For each recipe in RECIPES and each seed in SEEDS whose trained model exists
# (CELLS/<recipe>__seed=<k>/train/model), on XQuAD-R dev articles ARTICLES (the confirm half of
# configs/sweeps/findings-composition.yaml, so no part of the choice of the best recipe):
#   mixlingual robustness  -> OUT_ROOT/<recipe>__seed=<k>/{clean,<perturbation>-<rate>,cache}/
#   mixlingual attack      -> OUT_ROOT/<recipe>__seed=<k>/attack/attack.json
# JOBS models at a time, then
#   mixlingual robustness --summarize -> OUT_ROOT/summary/{summary.json,report.md,robustness.png}
# (docs/experiments.md, "Robustness over recipes"). Rerunning skips finished work: evaluation
# folders holding a metrics.json and attacks holding an attack.json are kept.
#
# Run from anywhere (it works from the repository root); every setting can be overridden:
#   RECIPES="x-x x-y hybrid mix-40-40-20" bash scripts/findings_robustness.sh
#   DRY_RUN=1 bash scripts/findings_robustness.sh      # print the commands only
set -euo pipefail

cd "$(dirname "$0")/.."

RECIPES="${RECIPES:-x-x x-y hybrid}"           # add the recipe the sweep named best
BASELINES="${BASELINES:-x-x x-y}"              # each other recipe's drop is compared with these
SEEDS="${SEEDS:-0 1 2 3 4}"
CELLS="${CELLS:-runs/sweeps/findings/cells}"
OUT_ROOT="${OUT_ROOT:-runs/robustness}"
DATA="${DATA:-../shared/data/xquad-r-dev}"
ARTICLES="${ARTICLES:-12-23}"
JOBS="${JOBS:-2}"                              # models at a time (one torch thread each)
N_RESAMPLES="${N_RESAMPLES:-10000}"
DRY_RUN="${DRY_RUN:-0}"
if [[ -z "${MIXLINGUAL:-}" ]]; then
    if [[ -x .venv/bin/mixlingual ]]; then MIXLINGUAL=.venv/bin/mixlingual; else MIXLINGUAL=mixlingual; fi
fi

# Strengths, read against perturb.py: `rate` is the share of a query's units that change, the
# count per query rounded stochastically. Articles 12-23 hold 310 questions x 11 languages; mean
# edits per query there (perturb_collection, seed 0) in brackets.
#   typo          unit = letter: 0.05 is ~2-3 edits in a 50-60-letter question (1.4 in hi, 0.8 in
#                 zh with 17 characters) - the attack's budget of 3 edits, so random and adversarial
#                 edits compare at about equal cost; 0.15 is ~8 (2.5 in zh).
#   diacritics    unit = letter carrying a diacritic (Latin, Greek, Cyrillic only): 0.5 strips half
#                 of them, 1 all (vi 12, el 6.5, tr 2.9, es 2.5, de 0.8, ru 0.7 with й/ё); ar, en,
#                 hi, th and zh queries are unchanged but for a few Latin names (at most 8%).
#   word-dropout  unit = word (a Han character in zh): 0.1 drops ~1 word of a 10-word question,
#                 0.3 ~3 (5 characters in zh); one word is always kept.
#   word-shuffle  unit = word that moves (cyclic shift among the chosen ones): fewer than 2 chosen
#                 moves nothing, so 0.3 leaves 1-14% of the questions as they are (~3 words move);
#                 1 moves every word. zh is shuffled by character, so 1 is much harsher there.
#   th has no word boundaries: both word perturbations leave it unchanged (counted as skipped).
PERTURBATIONS=(typo:0.05 typo:0.15 diacritics:0.5 diacritics:1 word-dropout:0.1 word-dropout:0.3
               word-shuffle:0.3 word-shuffle:1)
ATTACK_BUDGET="${ATTACK_BUDGET:-3}"
ATTACK_QUERIES="${ATTACK_QUERIES:-300}"
ATTACK_ARGS=(--budget "$ATTACK_BUDGET" --max-queries "$ATTACK_QUERIES" --seed 0)   # the same queries for every model
RUNTIME_ARGS=(--bf16 --threads 1)
DATA_ARGS=(--benchmark xquad-r --data "$DATA" --data-option "articles=$ARTICLES")

run() {   # print, then run unless DRY_RUN=1
    echo "+ $*"
    if [[ "$DRY_RUN" != 1 ]]; then "$@"; fi
}

evaluate_model() {   # $1 = <recipe>__seed=<k>: robustness, then the attack, logged to OUT_ROOT/<cell>/run.log
    local cell="$1" out="$OUT_ROOT/$1" model="$CELLS/$1/train/model"
    local perturb_args=()
    for p in "${PERTURBATIONS[@]}"; do perturb_args+=(--perturb "$p"); done
    if [[ "$DRY_RUN" == 1 ]]; then
        run "$MIXLINGUAL" robustness --model "$model" "${DATA_ARGS[@]}" "${perturb_args[@]}" "${RUNTIME_ARGS[@]}" \
            --out "$out"
        run "$MIXLINGUAL" attack --model "$model" "${DATA_ARGS[@]}" "${ATTACK_ARGS[@]}" "${RUNTIME_ARGS[@]}" \
            --out "$out/attack"
        return
    fi
    mkdir -p "$out"
    {
        run "$MIXLINGUAL" robustness --model "$model" "${DATA_ARGS[@]}" "${perturb_args[@]}" "${RUNTIME_ARGS[@]}" \
            --out "$out"
        if [[ -f "$out/attack/attack.json" ]]; then
            echo "= $out/attack/attack.json exists: attack skipped"
        else
            run "$MIXLINGUAL" attack --model "$model" "${DATA_ARGS[@]}" "${ATTACK_ARGS[@]}" "${RUNTIME_ARGS[@]}" \
                --out "$out/attack"
        fi
    } 2>&1 | tee "$out/run.log"
}

cells=()
for recipe in $RECIPES; do
    for k in $SEEDS; do
        cell="${recipe}__seed=${k}"
        if [[ -d "$CELLS/$cell/train/model" ]]; then
            cells+=("$cell")
        else
            echo "skip $cell: no model at $CELLS/$cell/train/model" >&2
        fi
    done
done
if [[ ${#cells[@]} -eq 0 ]]; then
    echo "no trained model found under $CELLS for recipes: $RECIPES" >&2
    exit 1
fi

export CELLS OUT_ROOT MIXLINGUAL DRY_RUN DATA ARTICLES
export -f run evaluate_model
# arrays do not cross `bash -c`: hand them over as declarations
export ARRAYS="$(declare -p PERTURBATIONS ATTACK_ARGS RUNTIME_ARGS DATA_ARGS)"
# a failed model stops the script before the summary
printf '%s\n' "${cells[@]}" | xargs -P "$JOBS" -I{} bash -c 'set -euo pipefail; eval "$ARRAYS"; evaluate_model "$1"' _ {} \
    || { echo "a model's robustness run or attack failed (see $OUT_ROOT/*/run.log); no summary written" >&2; exit 1; }

summary_args=()
for cell in "${cells[@]}"; do summary_args+=("${cell%__seed=*}=$OUT_ROOT/$cell"); done
baseline_args=()
for b in $BASELINES; do
    if [[ " ${cells[*]%__seed=*} " == *" $b "* ]]; then baseline_args+=("$b"); fi
done
run "$MIXLINGUAL" robustness --summarize "${summary_args[@]}" ${baseline_args[@]+--baseline "${baseline_args[@]}"} \
    --n-resamples "$N_RESAMPLES" --out "$OUT_ROOT/summary"
