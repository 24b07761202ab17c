"""The texts a language debiasing fit takes its means from, and the fit's overlap check.

Which texts feed each side:

* a collection (`xquad-r`, `mlqa-r`, a collection `.jsonl`, ...): queries -> query side,
  candidates -> passage side;
* a bitext set (`sib200-bitext`, `ntrex-bitext`, `tatoeba`): the same, and since every sentence
  is both a query and a candidate there, every sentence is encoded with both prefixes;
* parallel training data (`mlqa`, a parallel `.jsonl`): item queries -> query side, positives ->
  passage side.

A loader with a collection form is read as a collection. Each distinct (language, text) counts
once per side. `max_per_language` keeps N texts per language and side, chosen by a seeded hash of
the record's language-free id (the item id, a query's group, a candidate's id without its
`lang:` prefix), so a parallel corpus keeps the same sentences in every language.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from mixlingual.data.languages import canonical
from mixlingual.errors import DataError

logger = logging.getLogger("mixlingual.debias")


@dataclass
class FitText:
    lang: str      # canonical code
    text: str
    key: str       # language-free id: the same for the translations of one sentence


@dataclass
class FitCorpus:
    """Texts per side, and where they came from (recorded in the debias file)."""

    spec: str
    options: dict
    name: str
    texts: dict[str, list[FitText]]

    def describe(self) -> dict:
        return {"data": self.spec, "options": self.options, "name": self.name,
                "texts": {side: len(t) for side, t in self.texts.items()}}


def _strip_lang(record_id: str, lang: str) -> str:
    prefix = f"{lang}:"
    return record_id[len(prefix):] if record_id.startswith(prefix) else record_id


def load_fit_corpus(spec: str, options: dict | None = None) -> FitCorpus:
    """Read `spec` (NAME:PATH, NAME or FILE.jsonl, as in `mixlingual mine`) into per-side texts."""
    from mixlingual.data import registry
    from mixlingual.data.cli import kinds_to_load, parse_source

    options = dict(options or {})
    name, path = parse_source(spec)
    kinds = kinds_to_load(name, path, None)
    texts: dict[str, list[FitText]] = {"query": [], "passage": []}
    if "collection" in kinds:
        collection = registry.load_collection(name, path, **options)
        label = collection.name
        texts["query"] = [FitText(canonical(q.lang), q.text, q.group) for q in collection.queries]
        texts["passage"] = [FitText(canonical(c.lang), c.text, _strip_lang(c.id, c.lang)) for c in collection.candidates]
    else:
        items = registry.load_parallel(name, path, **options)
        label = name
        for item in items:
            texts["query"] += [FitText(canonical(x), t, item.id) for x, t in item.queries.items()]
            texts["passage"] += [FitText(canonical(x), t, item.id) for x, t in item.positives.items()]
    for side in texts:   # each distinct (language, text) once
        seen: set[tuple[str, str]] = set()
        texts[side] = [t for t in texts[side] if (t.lang, t.text) not in seen and not seen.add((t.lang, t.text))]
    if not texts["query"] and not texts["passage"]:
        raise DataError(f"fit corpus {spec} has no text (options: {options or 'none'})")
    return FitCorpus(spec, options, label, texts)


def eval_collection(args):
    """The collection named by --eval NAME:PATH (with --eval-option), None without --eval: what a fit is
    checked against (`debias fit`) or scored on (`debias sample-size`)."""
    if not args.eval:
        return None
    from mixlingual.data import registry
    from mixlingual.data.cli import parse_options, parse_source

    name, path = parse_source(args.eval)
    return registry.load_collection(name, path, **parse_options(args.eval_option))


def select(corpus: FitCorpus, *, languages: list[str] | None = None, max_per_language: int | None = None,
           seed: int = 0) -> FitCorpus:
    """The corpus restricted to `languages` (canonicalized) and to at most `max_per_language`
    texts per language and side (a seeded draw, the same keys in every language)."""
    wanted = {canonical(x) for x in languages} if languages else None
    chosen: dict[str, list[FitText]] = {}
    for side, texts in corpus.texts.items():
        kept = [t for t in texts if wanted is None or t.lang in wanted]
        if max_per_language:
            rank = {t.key: _draw(seed, t.key) for t in kept}
            by_lang: dict[str, list[FitText]] = {}
            for t in sorted(kept, key=lambda t: (rank[t.key], t.key, t.text)):
                bucket = by_lang.setdefault(t.lang, [])
                if len(bucket) < max_per_language:
                    bucket.append(t)
            kept = [t for lang in sorted(by_lang) for t in by_lang[lang]]
        chosen[side] = kept
    if not any(chosen.values()):
        raise DataError(f"fit corpus {corpus.spec} has no text in {', '.join(sorted(wanted or []))}")
    return FitCorpus(corpus.spec, corpus.options, corpus.name, chosen)


def _draw(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{key}".encode("utf-8"), digest_size=8).digest()


def embed_corpus(encoder, corpus: FitCorpus, *, cache_dir=None, batch_size: int = 64) -> dict:
    """{side: (vectors, languages)}: queries with the query prefix, passages with the passage
    prefix; `cache_dir` reuses the evaluation embedding cache (keyed by the model)."""
    from mixlingual.evaluation.embedding_cache import encode_cached

    out = {}
    for side, texts in corpus.texts.items():
        vectors = encode_cached(encoder, [t.text for t in texts], side, cache_dir=cache_dir,
                                batch_size=batch_size) if texts else np.zeros((0, encoder.dim), np.float32)
        out[side] = (vectors, [t.lang for t in texts])
    return out


def text_ids(corpus: FitCorpus) -> dict[str, np.ndarray]:
    """Normalized-text ids (`overlap.text_id`) per side, kept in the fit for the overlap check."""
    from mixlingual.data.overlap import text_id

    return {side: np.unique(np.asarray([text_id(t.text) for t in texts], np.int64))
            for side, texts in corpus.texts.items()}


def check_overlap(debias, collection, *, refuse: bool = True) -> dict:
    """Fit texts that are also texts of the evaluated `collection` (normalized as `data overlap`
    does: fit queries vs eval queries, fit passages vs candidates). Refuses, or warns, on any."""
    from mixlingual.data.overlap import text_id

    found = {}
    for side, records in (("query", collection.queries), ("passage", collection.candidates)):
        fitted = debias.sides[side].text_ids
        evaluated = np.asarray([text_id(r.text) for r in records], np.int64)
        hits = [r for r, hit in zip(records, np.isin(evaluated, fitted)) if hit]
        found[side] = {"evaluated": len(records), "overlapping": len(hits),
                       "examples": [f"[{r.lang}] {r.text[:80]}" for r in hits[:3]]}
    total = sum(v["overlapping"] for v in found.values())
    if total:
        message = (f"debias fit corpus {debias.corpus.get('data', '?')} overlaps the evaluated collection "
                   f"'{collection.name}': {found['query']['overlapping']} queries, {found['passage']['overlapping']} "
                   f"candidates (e.g. {(found['query']['examples'] + found['passage']['examples'])[0]})")
        if refuse:
            raise DataError(message + "; fit on other texts, or pass --debias-overlap warn to go on")
        logger.warning(message)
    return found



def fit_corpus(encoder, corpus: FitCorpus, *, method: str = "center", languages: list[str] | None = None,
               tolerance: float | None = None, cache_dir=None, batch_size: int = 64, draw: dict | None = None):
    """Embed `corpus` (already `select`ed) with `encoder` and fit a `LanguageDebias` on it;
    `draw` (max_per_language, seed) is recorded with the corpus."""
    from mixlingual.models.debias import DEFAULT_TOLERANCE, LanguageDebias, weights_fingerprint

    embeddings = embed_corpus(encoder, corpus, cache_dir=cache_dir, batch_size=batch_size)
    return LanguageDebias.fit(embeddings, method=method, fingerprint=weights_fingerprint(encoder),
                              languages=languages, tolerance=tolerance or DEFAULT_TOLERANCE,
                              model=getattr(encoder, "name", ""), corpus={**corpus.describe(), **(draw or {})},
                              text_ids=text_ids(corpus),
                              normalize=bool(getattr(getattr(encoder, "config", None), "normalize", True)))
