"""`mixlingual mine`: mine hard negatives for parallel training items (see `mixlingual.training.mining`).

    mixlingual mine --model embedded:multilingual-e5-small --data mlqa:../shared/data/mlqa \\
        --option split=test --out runs/mined/mlqa-test.jsonl --k 8 --margin 0.95 --bf16 --threads 1

--data is NAME:PATH, NAME or a canonical parallel FILE.jsonl (as in `mixlingual data overlap`);
loader options go in --option KEY=VALUE. The output is the canonical parallel-item JSONL with
the negatives merged in (train on it with `data.train: {name: jsonl, path: FILE}`), written
atomically; the report goes to FILE.report.json and is printed.
"""

from __future__ import annotations

import argparse
import logging

from mixlingual.evaluation.cli import add_runtime_arguments
from mixlingual.training.mining import MERGE_MODES, QUERY_MODES, SEARCH_MODES, MineOptions


def _margin(value: str) -> float | None:
    if value.lower() in ("none", "off"):
        return None
    try:
        margin = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {value!r}") from None
    if not margin > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {value!r}")
    return margin


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = MineOptions()
    parser.add_argument("--model", required=True, help="embedded:multilingual-e5-small, a model folder or a HF id")
    parser.add_argument("--data", required=True, help="training data: NAME:PATH, NAME or a parallel .jsonl file")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="loader option (repeatable; VALUE is JSON if it parses, a,b is a list)")
    parser.add_argument("--out", required=True, help="output parallel .jsonl(.gz); the report goes to OUT.report.json")
    parser.add_argument("--k", type=int, default=defaults.k, help="negatives to mine per item and passage language")
    parser.add_argument("--depth", type=int, default=defaults.depth,
                        help="candidates retrieved per query before the filters")
    parser.add_argument("--margin", type=_margin, default=defaults.margin,
                        help="reject candidates scoring above MARGIN x the positive's score ('none': off)")
    parser.add_argument("--queries", choices=QUERY_MODES, default=defaults.queries,
                        help="auto: the query in the passage's language when present, else every query "
                             "language (max score); all: always every query language")
    parser.add_argument("--merge", choices=MERGE_MODES, default=defaults.merge,
                        help="how mined negatives join the items' existing ones")
    parser.add_argument("--search", choices=SEARCH_MODES, default=defaults.search, help="exact (chunked) or faiss")
    parser.add_argument("--max-items", type=int, help="mine only the first N items (a measured subset)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--cache-dir", help="embedding cache folder (shared with evaluate; re-runs skip encoding)")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mixlingual.data import registry
    from mixlingual.data.cli import parse_options, parse_source
    from mixlingual.data.jsonl import write_parallel
    from mixlingual.io import write_json_atomic
    from mixlingual.evaluation.cli import load_encoder
    from mixlingual.training.mining import mine_negatives

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = MineOptions(k=args.k, depth=args.depth, margin=args.margin, queries=args.queries, merge=args.merge,
                          search=args.search, batch_size=args.batch_size, cache_dir=args.cache_dir)
    options.check()  # before any data or model is loaded
    name, path = parse_source(args.data)
    items = registry.load_parallel(name, path, **parse_options(args.option))
    if args.max_items:
        items = items[: args.max_items]
    encoder = load_encoder(args)
    mined, report = mine_negatives(encoder, items, options)
    write_parallel(mined, args.out)
    info = {"model": encoder.name, "data": args.data, "data_options": args.option, "out": args.out,
            **report.to_dict()}
    write_json_atomic(f"{args.out}.report.json", info)
    print(report.summary())
    print(f"wrote {args.out} and {args.out}.report.json")
    return 0
