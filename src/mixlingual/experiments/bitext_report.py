"""Files and command line of the bitext evaluation (`mixlingual.experiments.bitext`).

`write_bitext_report(result, out_dir)` writes `metrics.json`, `bitext.md` (group summaries, then one
row per language sorted by resource level) and `bitext_groups.png` (accuracy per group).

Command line (also what `mixlingual evaluate --benchmark sib200-bitext|ntrex-bitext|tatoeba` runs)::

    python -m mixlingual.experiments.bitext_report --model M --benchmark sib200-bitext \
        --data ../shared/data/sib200 --split dev --out runs/sib200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mixlingual.experiments.bitext import GROUPINGS, PAIR_METRICS
from mixlingual.io import write_atomic, write_json_atomic

_RESOURCE_ORDER = {"high": 0, "low": 1, "unknown": 2}


def _fmt(value) -> str:
    return "-" if value is None else (f"{100 * value:.1f}" if isinstance(value, float) and value <= 1 else
                                      f"{value:.1f}" if isinstance(value, float) else str(value))


def markdown(result: dict) -> str:
    """Group summaries and the per-language table (percentages; rank distance in ranks)."""
    columns = [f"xx->pivot {k}" for k in PAIR_METRICS] + [f"pivot->xx {k}" for k in PAIR_METRICS] + \
        ["multi map", "multi rank_distance"]
    pivot = result["pivot"]
    lines = [f"# Bitext retrieval: {result['collection']} (pivot {pivot}, encoder {result['encoder']})", ""]
    settings = result["settings"]
    lines += ["| setting | " + " | ".join(settings["xx->pivot"]) + " |", "|---" * 4 + "|"]
    for name in ("xx->pivot", "pivot->xx"):
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in settings[name].values()) + " |")
    if settings.get("multi"):
        lines += ["", "multilingual pool: " + ", ".join(f"{k} {_fmt(v)}" for k, v in settings["multi"].items())]
    header = "| group | languages | " + " | ".join(c.replace("pivot", pivot) for c in columns) + " |"
    for by in GROUPINGS:
        lines += ["", f"## By {by}", "", header, "|---" * (len(columns) + 2) + "|"]
        for name, values in result["groups"][by].items():
            lines.append(f"| {name} | {values['n_languages']} | " + " | ".join(_fmt(values.get(c)) for c in columns) + " |")
    lines += ["", "## Per language", "", "| lang | name | script | resource | seen | " +
              " | ".join(c.replace("pivot", pivot) for c in columns) + " |", "|---" * (len(columns) + 5) + "|"]
    rows = sorted(result["per_language"].items(), key=lambda kv: (_RESOURCE_ORDER.get(kv[1]["resource"], 3), kv[0]))
    for lang, v in rows:
        lines.append(f"| {lang} | {v['name']} | {v['script']} | {v['resource']} | {v['seen']} | " +
                     " | ".join(_fmt(v.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_groups(result: dict, path: Path) -> None:
    """Bar chart: xx->pivot and pivot->xx accuracy per resource level and per seen status."""
    from mixlingual.evaluation.report import plot_group_bars

    pivot = result["pivot"]
    plot_group_bars({by: result["groups"][by] for by in ("resource", "seen")},
                    [("xx->pivot acc", f"xx->{pivot} acc"), ("pivot->xx acc", f"{pivot}->xx acc")],
                    path, ylabel="accuracy (%)", suptitle=f"{result['collection']}: {result['encoder']}")


def write_bitext_report(result: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "metrics.json", result)
    write_atomic(out_dir / "bitext.md", markdown(result))
    plot_groups(result, out_dir / "bitext_groups.png")


def evaluate_and_report(encoder, collection, out_dir, **options) -> int:
    """Evaluate, write the report files into `out_dir` and print the summary (CLI entry points)."""
    from mixlingual.experiments.bitext import evaluate_bitext

    started = time.perf_counter()
    result = evaluate_bitext(encoder, collection, out_dir=out_dir, **options)
    print(markdown(result).split("\n## By script")[0])
    print(f"{time.perf_counter() - started:.0f}s; wrote {Path(out_dir) / 'metrics.json'} and bitext.md")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder, HF id, embedded:NAME or preset alias "
                        "(me5-small, labse, xlmr-base, mbert, laser; see models.presets)")
    parser.add_argument("--benchmark", required=True, choices=["sib200-bitext", "ntrex-bitext", "tatoeba"])
    parser.add_argument("--data", required=True, help="dataset folder (e.g. ../shared/data/sib200)")
    parser.add_argument("--split", default=None, help="sib200: train|dev (default dev)")
    parser.add_argument("--langs", default=None, help="comma-separated collection language codes")
    parser.add_argument("--max-sentences", type=int, default=None,
                        help="per language: evaluate only the first N sentences (bounds cost; easier task)")
    parser.add_argument("--pool-sentences", type=int, default=100, help="0 disables the multilingual pool")
    parser.add_argument("--pool-langs", type=int, default=None)
    parser.add_argument("--trained-langs", default="", help="fine-tuning languages, e.g. ar,de,es,hi,vi,zh")
    parser.add_argument("--precision", default=None, help="encoder precision override (bf16|fp32|auto)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    from mixlingual.data.registry import load_collection
    from mixlingual.models.load import load_encoder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    load_opts = {"split": args.split} if args.split else {}
    if args.langs:
        load_opts["langs"] = [x for x in args.langs.split(",") if x]
    collection = load_collection(args.benchmark, args.data, **load_opts)
    overrides = {"precision": args.precision} if args.precision else {}
    encoder = load_encoder(args.model, **overrides)
    return evaluate_and_report(encoder, collection, args.out, batch_size=args.batch_size, cache_dir=args.cache_dir,
                               max_sentences=args.max_sentences,
                               pool_sentences=args.pool_sentences, pool_langs=args.pool_langs,
                               trained_langs=[x for x in args.trained_langs.split(",") if x])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixlingual.experiments.bitext_report",
                                     description="bitext retrieval evaluation")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
