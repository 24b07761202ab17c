"""`mixlingual robustness`: clean vs perturbed queries, one model load, one candidate encoding.

    mixlingual robustness --model M --benchmark xquad-r --data PATH --out DIR \
        --perturb typo:0.1 --perturb word-shuffle:0.3 --perturb diacritics:1 [--perturb-seed 0] \
        [--data-option articles=12-23]

Evaluates the clean collection into DIR/clean/ and each perturbation into DIR/<name>-<rate>/
(the candidates' embeddings are cached in DIR/cache, so only the queries are re-encoded), then
writes DIR/robustness.json and DIR/robustness.md: metric change per setting and per language,
and the share of queries whose top-1 flipped. Folders already holding a metrics.json are reused.

Compare two existing evaluation folders instead (e.g. from `mixlingual evaluate --perturb`):

    mixlingual robustness --clean DIR_A --perturbed DIR_B [--perturbed DIR_C ...] --out DIR

Summarize many models (folders written by `--model` runs, each optionally with an attack in
DIR/attack/ from `mixlingual attack --out DIR/attack`); folders sharing a LABEL are the seeds of
one recipe:

    mixlingual robustness --summarize x-x=DIR1 x-x=DIR2 hybrid=DIR3 hybrid=DIR4 \
        --baseline x-x [--n-resamples 10000] --out OUT

writes OUT/summary.json, OUT/report.md and OUT/robustness.png: the drop (perturbed - clean) per
recipe, condition, measure and query language with 95% intervals over seeds and question groups,
and the difference of drops of each recipe against each baseline (`summary.py`).

Run a whole study - every model of a sweep's cells, its perturbations and attack, then the
summary - from a study file (`study.py`; configs/studies/findings-robustness.yaml):

    mixlingual robustness --study configs/studies/findings-robustness.yaml [--dry-run]

Comparing a clean and a perturbed evaluation of the same queries (`robustness_report`): inputs
are what `mixlingual evaluate` writes: two metrics.json dicts and the rows of their two
per_query.jsonl files (`setting`, `query`, `qlang`, `clang`, `first_rank`, metric values).

A query's top-1 *flips* when whether a relevant candidate is ranked first changes (hit -> miss
or miss -> hit); `first_rank` (the rank of the best relevant candidate) gives it without the run
files. With the TREC runs' rank-1 candidate ids (`top1_from_run`), `top1_changed` also counts
queries whose first candidate changed at all.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from mixlingual.errors import ConfigError
from mixlingual.evaluation.cli import add_data_option_argument, add_runtime_arguments, parse_data_options
from mixlingual.io import write_atomic, write_json_table_atomic
from mixlingual.experiments.robustness.perturb import evaluation_folder_name, parse_perturb_spec, perturb_collection
from mixlingual.experiments.sweep.aggregate import flatten_numbers


REPORT_METRICS = ("map", "r@1", "r@10", "mrr@10", "ndcg@10")


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def top1_from_run(path) -> dict[str, str]:
    """query id -> its rank-1 candidate id, from a TREC run file."""
    top = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            qid, _, doc, rank, *_ = line.split()
            if rank == "1":
                top[qid] = doc
    return top


def _delta(clean, perturbed) -> dict:
    if clean is None or perturbed is None:
        return {"clean": clean, "perturbed": perturbed, "delta": None}
    return {"clean": clean, "perturbed": perturbed, "delta": perturbed - clean}


def _flip_stats(clean_rows: list[dict], perturbed_rows: list[dict]) -> dict:
    """Per setting and query language: share of queries whose top-1 hit status changed."""
    key = lambda r: (r["setting"], r["query"], r.get("clang"))  # noqa: E731
    perturbed_by_key = {key(r): r for r in perturbed_rows}
    counts: dict = defaultdict(lambda: defaultdict(lambda: {"n": 0, "hit_to_miss": 0, "miss_to_hit": 0}))
    unmatched = 0
    for row in clean_rows:
        other = perturbed_by_key.get(key(row))
        if other is None:
            unmatched += 1
            continue
        hit_before, hit_after = row.get("first_rank") == 1, other.get("first_rank") == 1
        for lang in (row.get("qlang", "?"), "all"):
            c = counts[row["setting"]][lang]
            c["n"] += 1
            c["hit_to_miss"] += hit_before and not hit_after
            c["miss_to_hit"] += hit_after and not hit_before
    out = {}
    for setting, langs in counts.items():
        out[setting] = {lang: {**c, "flipped_share": (c["hit_to_miss"] + c["miss_to_hit"]) / c["n"]}
                        for lang, c in sorted(langs.items())}
    return {"per_setting": out, "unmatched_queries": unmatched}


def robustness_report(clean_metrics: dict, perturbed_metrics: dict, per_query_clean,
                      per_query_perturbed, *, top1_clean: dict[str, str] | None = None,
                      top1_perturbed: dict[str, str] | None = None) -> dict:
    """Metric change (perturbed - clean) per setting and per language, and top-1 flip shares.

    `per_query_*` are per_query.jsonl rows or paths to such files.
    """
    if isinstance(per_query_clean, (str, Path)):
        per_query_clean = read_jsonl(per_query_clean)
    if isinstance(per_query_perturbed, (str, Path)):
        per_query_perturbed = read_jsonl(per_query_perturbed)
    clean_flat, pert_flat = flatten_numbers(clean_metrics), flatten_numbers(perturbed_metrics)
    settings = {}
    for setting, values in (clean_metrics.get("settings") or {}).items():
        if values:
            settings[setting] = {m: _delta(values.get(m), ((perturbed_metrics.get("settings") or {})
                                                            .get(setting) or {}).get(m)) for m in REPORT_METRICS}
    per_language = {}
    for setting, langs in (clean_metrics.get("per_language") or {}).items():
        per_language[setting] = {
            lang: {m: _delta(clean_flat.get(f"per_language.{setting}.{lang}.{m}"),
                             pert_flat.get(f"per_language.{setting}.{lang}.{m}")) for m in REPORT_METRICS}
            for lang in langs}
    report = {
        "settings": settings,
        "rank_distance": _delta(clean_flat.get("rank_distance.mean"), pert_flat.get("rank_distance.mean")),
        "per_language": per_language,
        "top1_flips": _flip_stats(per_query_clean, per_query_perturbed),
        "perturbation": perturbed_metrics.get("perturbation"),
    }
    if top1_clean is not None and top1_perturbed is not None:
        common = set(top1_clean) & set(top1_perturbed)
        changed = sum(top1_clean[q] != top1_perturbed[q] for q in common)
        report["top1_changed"] = {"n": len(common), "changed": changed,
                                  "share": changed / len(common) if common else None}
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="output folder (required but with --study)")
    parser.add_argument("--model", help="model to evaluate (with --benchmark, --data, --perturb)")
    parser.add_argument("--benchmark", help="collection name in the dataset registry")
    parser.add_argument("--data", help="path of the benchmark data")
    add_data_option_argument(parser)
    parser.add_argument("--langs", help="comma-separated languages (default: all)")
    parser.add_argument("--perturb", action="append", default=[], metavar="NAME:RATE", help="repeatable")
    parser.add_argument("--perturb-seed", type=int, default=0)
    add_runtime_arguments(parser)
    parser.add_argument("--clean", type=Path, help="existing clean evaluation folder")
    parser.add_argument("--perturbed", type=Path, action="append", default=[], help="existing perturbed folder(s)")
    parser.add_argument("--summarize", nargs="+", metavar="LABEL=DIR",
                        help="summarize robustness folders over models; a LABEL repeated = seeds of one recipe")
    parser.add_argument("--baseline", nargs="+", metavar="LABEL",
                        help="with --summarize: recipes the others are compared with (default: the first label)")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="with --summarize: bootstrap resamples")
    parser.add_argument("--study", type=Path, metavar="FILE",
                        help="run a whole study from a file: every model's robustness and attack, then the summary "
                             "(configs/studies/; see study.py)")
    parser.add_argument("--dry-run", action="store_true", help="with --study: print the commands, run nothing")
    parser.add_argument("--jobs", type=int, help="with --study: models at a time (default: the file's `jobs`)")
    from mixlingual.models.debias_use import add_debias_arguments

    add_debias_arguments(parser)


def compare_folders(clean: Path, perturbed: Path) -> dict:
    """robustness_report over two evaluation folders (metrics.json, per_query.jsonl, runs/multi.trec)."""
    for folder in (clean, perturbed):
        if not (folder / "metrics.json").exists():
            raise ConfigError(f"{folder}: no metrics.json (not a finished evaluation folder)")
    load = lambda f: json.loads((f / "metrics.json").read_text(encoding="utf-8"))  # noqa: E731
    runs = [f / "runs" / "multi.trec" for f in (clean, perturbed)]
    tops = [top1_from_run(r) for r in runs] if all(r.exists() for r in runs) else [None, None]
    report = robustness_report(load(clean), load(perturbed), read_jsonl(clean / "per_query.jsonl"),
                               read_jsonl(perturbed / "per_query.jsonl"), top1_clean=tops[0], top1_perturbed=tops[1])
    if (perturbed / "perturbation.json").exists():
        report["perturbation"] = json.loads((perturbed / "perturbation.json").read_text(encoding="utf-8"))
    return report


def render_markdown(reports: dict[str, dict]) -> str:
    lines = ["# Robustness", "", "Change (perturbed - clean) of mAP per setting, rank distance, and the share of "
             "queries whose top-1 hit flipped (multi setting).", "",
             "| perturbation | realized rate | mono mAP | cross mAP | multi mAP | rank dist. | top-1 flipped |",
             "|---|---|---|---|---|---|---|"]
    for name, rep in reports.items():
        deltas = [(rep["settings"].get(k) or {}).get("map", {}).get("delta") for k in ("mono", "cross", "multi")]
        flips = rep["top1_flips"]["per_setting"].get("multi", {}).get("all")
        rate = (rep.get("perturbation") or {}).get("realized_rate")
        cells = [name, _num(rate, ".3f"), *(_num(d, "+.3f") for d in deltas),
                 _num(rep["rank_distance"]["delta"], "+.2f"), _num(flips and flips["flipped_share"], ".1%")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## multi mAP change per language", "",
              "| perturbation | " + " | ".join(_languages(reports)) + " |", "|---|" + "---|" * len(_languages(reports))]
    for name, rep in reports.items():
        multi = rep["per_language"].get("multi", {})
        vals = [multi.get(lang, {}).get("map", {}).get("delta") for lang in _languages(reports)]
        lines.append(f"| {name} | " + " | ".join(_num(v, "+.3f") for v in vals) + " |")
    return "\n".join(lines) + "\n"


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _languages(reports: dict[str, dict]) -> list[str]:
    return sorted({lang for rep in reports.values() for lang in rep["per_language"].get("multi", {})})


def _evaluate_all(args) -> tuple[Path, list[Path]]:
    """Clean + one evaluation per --perturb, in-process, candidate embeddings cached once."""
    from mixlingual.evaluation.evaluate import evaluate_collection
    from mixlingual.evaluation.cli import load_benchmark, load_encoder

    specs = [parse_perturb_spec(s) for s in args.perturb]   # fail on a bad spec before any work
    langs = args.langs.split(",") if args.langs else None
    collection = load_benchmark(args.benchmark, args.data, candidate="sentence", langs=langs,
                                options=parse_data_options(args.data_option))
    from mixlingual.models.debias_use import debias_from_args

    debias = debias_from_args(args)
    encoder = load_encoder(args)
    folders = []
    for name, rate in [(None, 0.0), *specs]:
        folder = args.out / evaluation_folder_name(name, rate)
        folders.append(folder)
        if (folder / "metrics.json").exists():
            continue
        coll = collection if name is None else perturb_collection(collection, name, rate, seed=args.perturb_seed)
        if name is not None:
            write_atomic(folder / "perturbation.json", json.dumps(coll.meta["perturbation"], indent=2))
        evaluate_collection(encoder, coll, langs=langs, out_dir=folder, cache_dir=args.out / "cache", debias=debias)
    return folders[0], folders[1:]


def summarize(args: argparse.Namespace) -> int:
    """--summarize: OUT/summary.json, OUT/report.md and OUT/robustness.png over many models."""
    from mixlingual.experiments.robustness.summary import parse_labelled_folders, summarize_robustness
    from mixlingual.experiments.robustness.report import plot_drops, render_summary_markdown

    if args.model or args.clean or args.perturbed or args.perturb:
        raise ConfigError("--summarize reads finished robustness folders; give it without --model / --clean / --perturbed")
    summary = summarize_robustness(parse_labelled_folders(args.summarize), baselines=args.baseline,
                                   n_resamples=args.n_resamples)
    write_json_table_atomic(args.out / "summary.json", summary)   # ~6,000 rows: one a line
    write_atomic(args.out / "report.md", render_summary_markdown(summary))
    plot = plot_drops(summary, args.out / "robustness.png")
    print(f"wrote {args.out / 'summary.json'}, {args.out / 'report.md'}" + (f" and {plot}" if plot else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.study:
        from mixlingual.experiments.robustness import study

        return study.run(args)
    if args.dry_run or args.jobs:
        raise ConfigError("--dry-run and --jobs apply to --study")
    if args.out is None:
        raise ConfigError("--out: required (the output folder)")
    if args.summarize:
        return summarize(args)
    if args.baseline:
        raise ConfigError("--baseline applies to --summarize")
    if args.clean:
        if args.data_option:
            raise ConfigError("--data-option applies to --model runs; --clean / --perturbed folders are already evaluated")
        clean, perturbed = args.clean, args.perturbed
    elif args.model and args.benchmark and args.perturb:
        clean, perturbed = _evaluate_all(args)
    else:
        raise ConfigError("give --model, --benchmark, --data and --perturb, or --clean and --perturbed folders")
    if not perturbed:
        raise ConfigError("nothing to compare: no perturbed evaluation")
    reports = {p.name: compare_folders(clean, p) for p in perturbed}
    write_atomic(args.out / "robustness.json", json.dumps(reports, indent=2))
    write_atomic(args.out / "robustness.md", render_markdown(reports))
    print(render_markdown(reports))
    return 0
