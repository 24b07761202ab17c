"""`mixlingual evaluate`: evaluate a model on a registry collection and write a report.

    mixlingual evaluate --model embedded:multilingual-e5-small --benchmark xquad-r \\
        --data ../shared/data/xquad-r-dev --out runs/eval/e5-xquad-r

Writes DIR/metrics.json, DIR/per_query.jsonl, DIR/runs/*.trec, DIR/qrels/*.qrels (see
`mixlingual.evaluation.evaluate`), then DIR/report.md with its plots (`mixlingual.evaluation.report`), and prints a
compact table.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import time

# benchmarks evaluated as bitext retrieval (mixlingual.experiments.transfer.bitext), not mono/cross/multi
BITEXT_BENCHMARKS = ("sib200-bitext", "ntrex-bitext", "tatoeba")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """--fp32 / --bf16 and --threads: shared by every command that encodes with a model."""
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp32", action="store_true", help="encode in float32")
    precision.add_argument("--bf16", action="store_true", help="encode with bfloat16 autocast (also on CPU)")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (default: torch's choice); on a busy shared CPU use 1, "
                             "as OpenMP threads spinning against other jobs can be many times slower")


def add_data_option_argument(parser: argparse.ArgumentParser) -> None:
    """--data-option KEY=VALUE (repeatable): shared by every command that loads a registry collection;
    read with `parse_data_options`, checked by `check_data_options` (via `load_benchmark`)."""
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                        help="option of the benchmark's loader (repeatable; value read as YAML), e.g. "
                             "articles=0-11 or paragraphs=40 for xquad-r (see docs/data.md)")


def load_encoder(args):
    """Set --threads, then load --model with the --fp32 / --bf16 choice (else its own default)."""
    import torch

    from mixlingual.models.encoder import BiEncoder

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    overrides = {}
    if getattr(args, "fp32", False):
        overrides["precision"] = "fp32"
    elif getattr(args, "bf16", False):
        overrides["precision"] = "bf16"
    from mixlingual.models.debias_use import is_debias_export, load_exported

    if is_debias_export(args.model):   # a `mixlingual debias export` folder applies its own fit
        return load_exported(args.model, **overrides)
    return BiEncoder.from_pretrained(args.model, **overrides)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixlingual.data import registry

    parser.add_argument("--model", required=True,
                        help="model name: embedded:multilingual-e5-small, a Hugging Face id or a folder")
    parser.add_argument("--benchmark", required=True, choices=registry.names() + ["image-text"], metavar="NAME",
                        help=f"collection from the dataset registry: {', '.join(registry.names())}; "
                             f"or image-text (image-caption retrieval, see docs/image_text.md)")
    parser.add_argument("--data", help="path of the benchmark data (folder or file)")
    parser.add_argument("--out", required=True, help="output folder")
    add_data_option_argument(parser)
    parser.add_argument("--langs", nargs="+", help="languages to evaluate (default: all of the collection); "
                                                   "space- or comma-separated")
    parser.add_argument("--settings", nargs="+", default=["mono", "cross", "multi"],
                        choices=["mono", "cross", "multi"], help="which settings to run")
    parser.add_argument("--candidate", default="sentence", choices=["sentence", "sentence+context"],
                        help="encode candidate sentences alone or followed by their paragraph")
    parser.add_argument("--batch-size", type=int, default=64)
    add_runtime_arguments(parser)
    parser.add_argument("--cache-dir", help="embedding cache folder (re-runs skip encoding)")
    parser.add_argument("--run-depth", type=int, default=100, help="run file depth for mono / multi")
    parser.add_argument("--cross-run-depth", type=int, default=10,
                        help="run file depth per cross-lingual pair (110 pairs for 11 languages)")
    parser.add_argument("--perturb", metavar="NAME:RATE", help="perturb the queries first (robustness), e.g. "
                        "typo:0.1; see mixlingual.experiments.robustness.perturb (writes DIR/perturbation.json)")
    parser.add_argument("--perturb-seed", type=int, default=0, help="seed of --perturb")
    from mixlingual.models.debias_use import add_debias_arguments

    add_debias_arguments(parser)
    from mixlingual.imagetext.cli import add_evaluate_arguments

    add_evaluate_arguments(parser)


def _split_langs(values) -> list[str] | None:
    if not values:
        return None
    return [lang for value in values for lang in value.split(",") if lang]


# loader options that have their own flag (they also change how the evaluation encodes / filters)
FLAG_OPTIONS = {"candidate": "--candidate", "langs": "--langs"}


def parse_data_options(specs: list[str]) -> dict:
    """['articles=0-11', 'paragraphs=40'] -> {'articles': '0-11', 'paragraphs': 40} (values as YAML)."""
    import yaml

    from mixlingual.errors import ConfigError

    options = {}
    for spec in specs:
        key, eq, value = spec.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--data-option '{spec}' must look like key=value")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--data-option {key.strip()}: value {value!r} is not valid YAML ({err})") from err
    return options


def check_data_options(benchmark: str, options: dict) -> None:
    """Refuse options the benchmark's loader does not take (before any model or data is loaded);
    the error names the option and lists the ones it takes."""
    if not options:
        return
    from mixlingual.data import registry
    from mixlingual.errors import ConfigError

    params = inspect.signature(registry.get_loader(benchmark).load_collection).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = [n for n, p in list(params.items())[1:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in options:
        if key in FLAG_OPTIONS:
            raise ConfigError(f"--data-option {key}: give it as {FLAG_OPTIONS[key]} instead")
        if not takes_any and key not in known:
            raise ConfigError(f"--data-option {key}: the {benchmark} loader has no option '{key}' "
                              f"(it takes: {', '.join(k for k in known if k not in FLAG_OPTIONS) or 'none'})")


def load_benchmark(name: str, path, *, candidate: str, langs, options: dict | None = None):
    """Load a registry collection, passing `candidate` / `langs` to loaders that accept them,
    and the loader `options` (checked by `check_data_options`)."""
    from mixlingual.data import registry

    accepted = inspect.signature(registry.get_loader(name).load_collection).parameters
    check_data_options(name, options or {})
    options = dict(options or {})
    if "candidate" in accepted:
        options["candidate"] = candidate
    if "langs" in accepted and langs:
        options["langs"] = langs
    return registry.load_collection(name, path, **options)


def run(args: argparse.Namespace) -> int:
    from mixlingual.evaluation.evaluate import evaluate_collection
    from mixlingual.evaluation.report import render_report, text_summary

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.benchmark == "image-text":
        from mixlingual.imagetext.cli import run_evaluate

        return run_evaluate(args)
    langs = _split_langs(args.langs)
    collection = load_benchmark(args.benchmark, args.data, candidate=args.candidate, langs=langs,
                                options=parse_data_options(args.data_option))
    if args.perturb:
        from mixlingual.experiments.robustness.perturb import parse_perturb_spec, perturb_collection

        collection = perturb_collection(collection, *parse_perturb_spec(args.perturb), seed=args.perturb_seed)
    from mixlingual.models.debias_use import debias_from_args

    debias = debias_from_args(args)   # a bad file fails before the model loads
    encoder = load_encoder(args)
    if args.benchmark in BITEXT_BENCHMARKS:
        if debias is not None:
            from mixlingual.errors import ConfigError

            raise ConfigError(f"--debias: not supported for bitext benchmarks ({args.benchmark}) yet")
        from mixlingual.experiments.transfer.bitext_cli import evaluate_and_report

        return evaluate_and_report(encoder, collection, args.out, batch_size=args.batch_size,
                                   cache_dir=args.cache_dir)
    started = time.perf_counter()
    metrics = evaluate_collection(encoder, collection, settings=args.settings, langs=langs, out_dir=args.out,
                                  cache_dir=args.cache_dir, candidate=args.candidate,
                                  batch_size=args.batch_size, run_depth=args.run_depth,
                                  cross_run_depth=args.cross_run_depth, debias=debias)
    if args.perturb:
        from mixlingual.io import write_json_atomic

        write_json_atomic(os.path.join(args.out, "perturbation.json"), collection.meta["perturbation"])
    report = render_report(metrics, args.out)
    print(f"{metrics['model']} on {metrics['collection']} ({', '.join(metrics['langs'])}), "
          f"{time.perf_counter() - started:.0f}s")
    print(text_summary(metrics))
    print(f"wrote {os.path.join(args.out, 'metrics.json')} and {report}")
    return 0

