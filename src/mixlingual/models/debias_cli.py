"""`mixlingual debias fit|export|sample-size`: training-free language debiasing (see `models.debias`).

    mixlingual debias fit --model embedded:multilingual-e5-small --data sib200-bitext:../shared/data/sib200 \\
        -o split=train+dev --languages en,ar,de,el,es,hi,ru,th,tr,vi,zh --max-per-language 300 \\
        --method center --bf16 --threads 1 --out runs/debias/sib200-center.safetensors
    mixlingual evaluate ... --debias runs/debias/sib200-center.safetensors
    mixlingual debias export --model embedded:multilingual-e5-small --debias FILE --out DIR

--data is NAME:PATH, NAME or a canonical .jsonl (as in `mixlingual mine`), loader options in
-o KEY=VALUE. `--eval NAME:PATH` (with --eval-option) names the collection the fit is for: the
fit corpus is checked not to overlap it, and `project` takes its languages by default.
"""

from __future__ import annotations

import argparse
import logging

from mixlingual.errors import ConfigError
from mixlingual.evaluation.cli import add_runtime_arguments

# `project` over more languages than this needs them named: e5-small has 384 dimensions, and
# projecting out 204 language directions of SIB-200 would remove half of them
MAX_DEFAULT_PROJECTION_LANGUAGES = 32


def _languages(value: str | None) -> list[str] | None:
    return [x for x in value.split(",") if x] if value else None


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="embedded:multilingual-e5-small, a model folder or a HF id")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cache-dir", help="embedding cache folder (shared with evaluate; re-runs skip encoding)")
    add_runtime_arguments(p)


def _add_corpus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="fit corpus: NAME:PATH, NAME or a .jsonl file")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option of --data (repeatable; VALUE is JSON if it parses, a,b is a list)")
    p.add_argument("--languages", help="languages to fit, comma-separated (any code; keyed canonically)")
    p.add_argument("--eval", metavar="NAME:PATH", help="the collection the fit is for: checked for overlap, "
                                                       "and its languages are the default of --languages")
    p.add_argument("--eval-option", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option of --eval (repeatable)")
    p.add_argument("--overlap", choices=("refuse", "warn"), default="refuse",
                   help="when the fit corpus shares texts with --eval: stop (default) or warn")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    fit = sub.add_parser("fit", help="per-language mean embeddings of a corpus -> a debias file")
    _add_model_arguments(fit)
    _add_corpus_arguments(fit)
    fit.add_argument("--method", choices=("center", "project"), default="center",
                     help="center: subtract each language's mean (needs the language at inference); "
                          "project: remove the span of the language means (needs no language)")
    fit.add_argument("--max-per-language", type=int, help="at most N texts per language and side (seeded draw)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the --max-per-language draw")
    fit.add_argument("--tolerance", type=float, help="project: keep singular values above TOL x the largest "
                                                    "(default 1e-6)")
    fit.add_argument("--out", required=True, help="output FILE (safetensors; FILE.json beside it)")

    export = sub.add_parser("export", help="write a sentence-transformers folder that applies a debias file")
    export.add_argument("--model", required=True, help="the model the file was fitted on")
    export.add_argument("--debias", required=True, metavar="FILE")
    export.add_argument("--out", required=True, help="output folder")
    add_runtime_arguments(export)

    study = sub.add_parser("sample-size", help="how many sentences per language the means need "
                                               "(draws of N texts, scored on a collection)")
    _add_model_arguments(study)
    _add_corpus_arguments(study)
    study.add_argument("--method", choices=("center", "project"), default="center")
    study.add_argument("--sizes", default="10,30,100,300,1000", help="texts per language, comma-separated")
    study.add_argument("--draws", type=int, default=5, help="random draws per size")
    study.add_argument("--out", required=True, help="output folder (sample_size.json + sample_size.md)")


def _fit_languages(args, collection, method: str, corpus_languages) -> list[str] | None:
    languages = _languages(args.languages)
    if languages is None and collection is not None:
        languages = collection.languages
    if method == "project" and languages is None and len(corpus_languages) > MAX_DEFAULT_PROJECTION_LANGUAGES:
        raise ConfigError(f"--method project: the fit corpus has {len(corpus_languages)} languages; name the "
                          "evaluated collection's languages with --languages (or give --eval), since each "
                          "language removes one dimension")
    return languages


def _run_fit(args) -> int:
    from mixlingual.data.cli import parse_options
    from mixlingual.evaluation.cli import load_encoder
    from mixlingual.models.debias_corpus import check_overlap, eval_collection, fit_corpus, load_fit_corpus, select

    collection = eval_collection(args)
    corpus = load_fit_corpus(args.data, parse_options(args.option))
    present = sorted({t.lang for texts in corpus.texts.values() for t in texts})
    languages = _fit_languages(args, collection, args.method, present)
    corpus = select(corpus, languages=languages, max_per_language=args.max_per_language, seed=args.seed)
    encoder = load_encoder(args)
    debias = fit_corpus(encoder, corpus, method=args.method, languages=languages, tolerance=args.tolerance,
                        cache_dir=args.cache_dir, batch_size=args.batch_size,
                        draw={"max_per_language": args.max_per_language, "seed": args.seed})
    if collection is not None:
        check_overlap(debias, collection, refuse=args.overlap == "refuse")
    debias.save(args.out)
    counts = debias.sides["query"].counts
    rank = f", rank {debias.sides['query'].rank} / {debias.sides['passage'].rank} (query / passage)" \
        if args.method == "project" else ""
    print(f"{args.method} fit of {encoder.name} on {corpus.name}: {len(debias.languages)} languages, "
          f"{min(counts.values())}-{max(counts.values())} queries per language{rank}")
    print(f"wrote {args.out} and {args.out}.json")
    return 0


def _run_export(args) -> int:
    from mixlingual.evaluation.cli import load_encoder
    from mixlingual.integrations.st_debias import export_debiased

    encoder = load_encoder(args)
    export_debiased(encoder, args.debias, args.out)
    print(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.action == "fit":
        return _run_fit(args)
    if args.action == "export":
        return _run_export(args)
    from mixlingual.experiments.debias.sample_size import run_study

    return run_study(args)
