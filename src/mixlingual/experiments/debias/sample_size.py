"""`mixlingual debias sample-size`: how many texts per language the language means need.

The fit corpus and the evaluated collection are encoded once (through the embedding cache);
each draw then only takes means of N texts per language (`debias_corpus.select` with the draw's
seed), applies them and scores the collection, so 5 sizes x 5 draws cost 25 scoring passes and
no encoding. Writes OUT/sample_size.json (every draw, and per size the mean and spread) and
OUT/sample_size.md (one table: size | mono | cross | multi mAP | rank distance).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from mixlingual.errors import ConfigError

_COLUMNS = (("mono", "map"), ("cross", "map"), ("multi", "map"))


def _summary(metrics: dict) -> dict:
    values = {f"{setting} {name}": metrics["settings"][setting][name] for setting, name in _COLUMNS}
    values["rank distance"] = metrics["rank_distance"]["mean"]
    return values


def _spread(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: {"mean": statistics.fmean(r[k] for r in rows),
                "sd": statistics.stdev([r[k] for r in rows]) if len(rows) > 1 else 0.0} for k in keys}


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise ConfigError(f"--sizes: expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--sizes: expected positive integers, got {text!r}")
    return sizes


def _markdown(report: dict) -> str:
    keys = list(report["baseline"])
    lines = [f"# Language debiasing: texts per language ({report['method']})", "",
             f"Model {report['model']}; fit corpus {report['corpus']['data']} {report['corpus']['options']}; "
             f"evaluated on {report['eval']['data']} {report['eval']['options']}; "
             f"{report['draws']} draws per size (mean +- sd).", "",
             "| texts per language | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
             "| none (no debiasing) | " + " | ".join(f"{report['baseline'][k]:.3f}" for k in keys) + " |"]
    for size, entry in report["sizes"].items():
        cells = [f"{entry['summary'][k]['mean']:.3f} +- {entry['summary'][k]['sd']:.3f}" for k in keys]
        lines.append(f"| {size} (got {entry['texts_per_language']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_study(args) -> int:
    from mixlingual.data.cli import parse_options
    from mixlingual.evaluation.cli import load_encoder
    from mixlingual.evaluation.evaluate import evaluate_collection
    from mixlingual.io import write_atomic, write_json_atomic
    from mixlingual.models.debias import LanguageDebias, weights_fingerprint
    from mixlingual.models.debias_corpus import embed_corpus, eval_collection, load_fit_corpus, select, text_ids
    from mixlingual.models.debias_use import DebiasUse

    sizes = _sizes(args.sizes)
    if args.draws < 1:
        raise ConfigError(f"--draws: expected a positive integer, got {args.draws}")
    collection = eval_collection(args)
    if collection is None:
        raise ConfigError("sample-size needs --eval NAME:PATH: the collection the draws are scored on")
    languages = [x for x in (args.languages or "").split(",") if x] or collection.languages
    full = select(load_fit_corpus(args.data, parse_options(args.option)), languages=languages)
    encoder = load_encoder(args)
    fingerprint = weights_fingerprint(encoder)
    # every text once: each draw below picks rows of these matrices
    embedded = embed_corpus(encoder, full, cache_dir=args.cache_dir, batch_size=args.batch_size)
    row = {side: {(t.lang, t.text): i for i, t in enumerate(texts)} for side, texts in full.texts.items()}

    def score(debias) -> dict:
        use = None
        if debias is not None:
            use = DebiasUse(debias, overlap=args.overlap)
            use._checked.add(id(encoder))   # fitted on this encoder's embeddings just above
        return _summary(evaluate_collection(encoder, collection, cache_dir=args.cache_dir, debias=use,
                                            batch_size=args.batch_size, run_depth=0, cross_run_depth=0))

    report = {"model": encoder.name, "fingerprint": fingerprint, "method": args.method, "draws": args.draws,
              "corpus": {"data": args.data, "options": parse_options(args.option)},
              "eval": {"data": args.eval, "options": parse_options(args.eval_option)},
              "languages": languages, "baseline": score(None), "sizes": {}}
    for size in sizes:
        runs = []
        for draw in range(args.draws):
            part = select(full, max_per_language=size, seed=draw)
            vectors = {side: (embedded[side][0][[row[side][(t.lang, t.text)] for t in texts]],
                              [t.lang for t in texts]) for side, texts in part.texts.items()}
            debias = LanguageDebias.fit(vectors, method=args.method, fingerprint=fingerprint, languages=languages,
                                        model=encoder.name, corpus=part.describe(),
                                        text_ids=text_ids(part))
            runs.append({"draw": draw, **score(debias)})
        counts = [c for side in ("query", "passage") for c in debias.sides[side].counts.values()]
        report["sizes"][str(size)] = {"texts_per_language": f"{min(counts)}-{max(counts)}" if min(counts) != max(counts)
                                      else str(min(counts)), "runs": runs,
                                      "summary": _spread([{k: v for k, v in r.items() if k != "draw"} for r in runs])}
        print(f"{size} texts per language: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in
                                                          report["sizes"][str(size)]["summary"].items()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "sample_size.json", report)
    write_atomic(out / "sample_size.md", _markdown(report))
    print(f"wrote {out / 'sample_size.json'} and {out / 'sample_size.md'}")
    return 0
