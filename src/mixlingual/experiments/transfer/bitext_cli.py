"""Command line of the bitext evaluation (`mixlingual.experiments.transfer.bitext`, which also writes its
files: `metrics.json`, `bitext.md` and `bitext_groups.png`).

Command line (also what `mixlingual evaluate --benchmark sib200-bitext|ntrex-bitext|tatoeba` runs)::

    python -m mixlingual.experiments.transfer.bitext_cli --model M --benchmark sib200-bitext \
        --data ../shared/data/sib200 --split dev --out runs/sib200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mixlingual.experiments.transfer.bitext import evaluate_bitext, markdown


def evaluate_and_report(encoder, collection, out_dir, **options) -> int:
    """Evaluate, write the report files into `out_dir` and print the summary (CLI entry points)."""
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
    parser = argparse.ArgumentParser(prog="python -m mixlingual.experiments.transfer.bitext_cli",
                                     description="bitext retrieval evaluation")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
