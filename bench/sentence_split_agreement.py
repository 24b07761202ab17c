"""Sentence-splitter agreement with gold boundaries, and MLQA-R counts against LAReQA's.

1. XQuAD-R (`--xquad-r`, LAReQA files with `sentences`): per language, the share of gold
   sentences that a splitter reproduces exactly (after the shared clean-up), per splitter.
2. MLQA dev (`--mlqa`): MLQA-R candidate counts per language and splitter vs LAReQA's
   published counts (relative difference).

Prints both tables and writes them as JSON to `--out` (default bench/results/sentence_split.json).

    .venv/bin/python bench/sentence_split_agreement.py --xquad-r ../shared/data/xquad-r-dev \
        --mlqa ../shared/data/mlqa
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mixlingual.data.mlqa_r import load_collection as load_mlqa_r
from mixlingual.data.sentences import SPLITTERS, split_sentences
from mixlingual.data.squad import read_squad

LAREQA_MLQA_R_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}
_INVISIBLE = str.maketrans("", "", "\ufeff\u200b")


def agreement(folder: Path, splitter: str) -> dict[str, dict]:
    """lang -> {gold, predicted, exact share, seconds} for one splitter."""
    out = {}
    for file in sorted(folder.glob("*.json")):
        gold_n = hit = predicted = 0
        start = time.perf_counter()
        for para in read_squad(file):
            gold = [s.translate(_INVISIBLE).strip() for s in para.sentences or []]
            pred = {s.translate(_INVISIBLE).strip() for s in split_sentences(para.context, file.stem, splitter)}
            gold_n += len(gold)
            hit += sum(g in pred for g in gold)
            predicted += len(pred)
        out[file.stem] = {"gold": gold_n, "predicted": predicted, "exact": round(hit / max(gold_n, 1), 4),
                          "seconds": round(time.perf_counter() - start, 3)}
    return out


def mlqa_r_counts(root: Path, splitter: str) -> dict[str, dict]:
    counts = load_mlqa_r(root, splitter=splitter).counts()
    return {lang: {"candidates": c["candidates"], "queries": c["queries"],
                   "lareqa": LAREQA_MLQA_R_CANDIDATES[lang],
                   "diff_pct": round(100 * (c["candidates"] / LAREQA_MLQA_R_CANDIDATES[lang] - 1), 2)}
            for lang, c in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad-r", type=Path, default=Path("../shared/data/xquad-r-dev"))
    parser.add_argument("--mlqa", type=Path, default=Path("../shared/data/mlqa"))
    parser.add_argument("--splitters", nargs="+", default=list(SPLITTERS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/sentence_split.json"))
    args = parser.parse_args()
    result = {"agreement": {s: agreement(args.xquad_r, s) for s in args.splitters},
              "mlqa_r": {s: mlqa_r_counts(args.mlqa, s) for s in args.splitters}}
    langs = sorted(next(iter(result["agreement"].values())))
    print("XQuAD-R: share of gold sentences reproduced exactly")
    print("lang  " + "  ".join(f"{s:>10}" for s in args.splitters))
    for lang in langs:
        print(f"{lang:<5} " + "  ".join(f"{result['agreement'][s][lang]['exact']:>10.3f}" for s in args.splitters))
    print("\nMLQA-R candidates vs LAReQA (relative difference, %)")
    print("lang  lareqa  " + "  ".join(f"{s:>16}" for s in args.splitters))
    for lang, target in LAREQA_MLQA_R_CANDIDATES.items():
        cells = [f"{result['mlqa_r'][s][lang]['candidates']:>7} ({result['mlqa_r'][s][lang]['diff_pct']:+5.1f})"
                 for s in args.splitters]
        print(f"{lang:<5} {target:>6}  " + "  ".join(cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
