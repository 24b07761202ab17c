"""`mixlingual data list|inspect|convert|overlap`: look at, convert and leak-check datasets.

    mixlingual data list
    mixlingual data inspect mlqa ../shared/data/mlqa --option split=dev [--json]
    mixlingual data convert xquad-r ../shared/data/xquad-r-dev --out xquad-r.jsonl
    mixlingual data overlap mlqa:../shared/data/mlqa xquad-r:../shared/data/xquad-r-dev [--refuse]

A dataset is NAME PATH (inspect/convert) or NAME:PATH / NAME / FILE.jsonl (overlap). Loader
options go in `--option KEY=VALUE` (repeatable; VALUE is JSON if it parses, "a,b" is a list).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from mixlingual.data import registry
from mixlingual.data.jsonl import detect_kind, write_collection, write_parallel
from mixlingual.data.overlap import measure_overlap
from mixlingual.errors import ConfigError, DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="registered dataset names and what they load")
    for action, text in (("inspect", "per-language counts"), ("convert", "write the canonical JSONL")):
        p = sub.add_parser(action, help=text)
        p.add_argument("name", help="registry name (see `mixlingual data list`)")
        p.add_argument("path", nargs="?", default=None, help="file or folder (optional for 'demo')")
        p.add_argument("--kind", choices=("parallel", "collection"), help="which kind to load when both exist")
        p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="loader option")
        if action == "inspect":
            p.add_argument("--json", action="store_true", help='print {"languages": {lang: {...}}} as JSON')
        else:
            p.add_argument("--out", required=True, type=Path, help="output .jsonl (or .jsonl.gz)")
    p = sub.add_parser("overlap", help="exact / normalized text overlap between training and evaluation data")
    p.add_argument("train", help="NAME:PATH, NAME, or a parallel .jsonl file")
    p.add_argument("eval", help="NAME:PATH, NAME, or a collection .jsonl file")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option for both sides")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--refuse", action="store_true", help="exit with status 1 when anything overlaps")


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value.split(",") if "," in value else value
    return options


def parse_source(spec: str) -> tuple[str, str | None]:
    """'NAME:PATH' | 'NAME' | 'FILE.jsonl' -> (registry name, path)."""
    name, sep, path = spec.partition(":")
    if sep and name in registry.LOADERS:
        return name, path or None
    if spec in registry.LOADERS:
        return spec, None
    if Path(spec).is_file():
        return "jsonl", spec
    raise ConfigError(f"dataset {spec!r}: expected NAME:PATH, NAME or an existing .jsonl file "
                      f"(names: {', '.join(registry.LOADERS)})")


def kinds_to_load(name: str, path, wanted: str | None) -> list[str]:
    kinds = list(registry.get_loader(name).KINDS)
    if wanted:
        if wanted not in kinds:
            raise ConfigError(f"dataset '{name}' has no {wanted} form (it has: {', '.join(kinds)})")
        return [wanted]
    if name == "jsonl" and path is not None:
        return [detect_kind(path)]
    return kinds


def language_counts(name: str, path, kinds: list[str], options: dict,
                    reports: list | None = None) -> dict[str, dict[str, int]]:
    """Per-language counts; each load's one-line report summary goes to `reports` when given."""
    counts: dict[str, Counter] = {}
    for kind in kinds:
        if kind == "parallel":
            items = registry.load_parallel(name, path, **options)
            if reports is not None and hasattr(items, "report"):
                reports.append(items.report.summary())
            for item in items:
                for lang in set(item.queries) | set(item.positives):
                    counts.setdefault(lang, Counter())["items"] += 1
                for lang in item.positives:  # "item_" keys never clash with a collection's counts
                    counts[lang]["item_positives"] += 1
                for lang in item.queries:
                    counts[lang]["item_queries"] += 1
        else:
            collection = registry.load_collection(name, path, **options)
            for lang, c in collection.counts().items():
                counts.setdefault(lang, Counter()).update(c)
    return {lang: dict(c) for lang, c in sorted(counts.items())}


def _run_overlap(args) -> int:
    options = parse_options(args.option)
    train_name, train_path = parse_source(args.train)
    eval_name, eval_path = parse_source(args.eval)
    items = registry.load_parallel(train_name, train_path, **options)
    collection = registry.load_collection(eval_name, eval_path, **options)
    report = measure_overlap(items, collection)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(report.summary())
        for kind, part in (("queries", report.queries), ("passages", report.passages)):
            for example in part.examples:
                print(f"  {kind}: {example}")
    return 1 if (args.refuse and report.any) else 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in registry.names():
            loader = registry.get_loader(name)
            print(f"{name:<14} [{'/'.join(loader.KINDS)}] {loader.DESCRIPTION}")
        return 0
    if args.action == "overlap":
        return _run_overlap(args)
    options = parse_options(args.option)
    kinds = kinds_to_load(args.name, args.path, args.kind)
    if args.action == "inspect":
        reports: list[str] = []
        counts = language_counts(args.name, args.path, kinds, options, reports)
        if args.json:
            print(json.dumps({"languages": counts}, ensure_ascii=False))
        else:
            keys = sorted({k for c in counts.values() for k in c})
            print("lang      " + "".join(f"{k:>16}" for k in keys))
            for lang, c in counts.items():
                print(f"{lang:<10}" + "".join(f"{c.get(k, 0):>16}" for k in keys))
            for summary in reports:
                print(f"load report: {summary}")
        return 0
    if len(kinds) != 1:
        raise ConfigError(f"dataset '{args.name}' has both forms: choose one with --kind parallel|collection")
    if kinds[0] == "parallel":
        n = write_parallel(registry.load_parallel(args.name, args.path, **options), args.out)
    else:
        n = write_collection(registry.load_collection(args.name, args.path, **options), args.out)
    print(f"wrote {n} records to {args.out}")
    return 0


__all__ = ["DataError", "add_arguments", "parse_options", "parse_source", "run"]
