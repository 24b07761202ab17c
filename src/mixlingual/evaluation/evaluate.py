"""Monolingual, cross-lingual and multilingual retrieval evaluation of one collection.

Settings (as in LAReQA and the hybrid-batch paper; relevance: `query.group in candidate.groups`):

* mono  - queries in X against the candidates in X, one setting per language X;
* cross - queries in X against the candidates in Y, every ordered pair X != Y;
* multi - queries in X against the pool of all languages, every relevant candidate counted.

All three come from one pass: each query language is scored against the whole pool (sorted by
language into blocks) and `mixlingual.evaluation.search.score_relevant` returns every relevant candidate's
rank in the pool (multi) and within its own language block (mono / cross).  Macro averages: mono
over languages, cross over ordered pairs, multi over query languages.  Language bias is measured
twice on multilingual queries: rank distance, and language preference (the share of the top 10 in
the query's language minus the share of its relevant candidates there).  Nothing is written
unless `out_dir` is given, so training can call this every N steps.

One module on purpose: the three settings come from one scoring pass, so selecting, scoring and
aggregating that pass read together; search, metrics, the embedding cache and the output files
already live apart (`search`, `metrics`, `embedding_cache`, `outputs`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mixlingual.evaluation import metrics
from mixlingual.data.records import Collection
from mixlingual.evaluation.embedding_cache import encode_cached
from mixlingual.errors import ConfigError, DataError, ModelError
from mixlingual.evaluation.outputs import EvalOutputs
from mixlingual.evaluation.search import DEFAULT_CHUNK_BYTES, Relevance, score_relevant

SETTINGS = ("mono", "cross", "multi")
CANDIDATE_MODES = ("sentence", "sentence+context")


def candidate_text(candidate, mode: str) -> str:
    """The text encoded for a candidate: the sentence, or the sentence followed by its context."""
    if mode == "sentence+context" and candidate.context:
        return f"{candidate.text} {candidate.context}"
    return candidate.text


@dataclass(frozen=True)
class EvalOptions:
    """What `evaluate_collection` evaluates and how; each field is also one of its keywords.

    `run_depth` / `cross_run_depth`: TREC run depth for mono and multi / per pair for cross
    (0 disables; runs are written only with an `out_dir`).
    """

    settings: tuple[str, ...] = SETTINGS
    langs: Sequence[str] | None = None
    candidate: str = "sentence"
    batch_size: int = 64
    run_depth: int = 100
    cross_run_depth: int = 10
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES
    show_progress: bool | None = None

    def run_depths(self) -> dict[str, int]:
        return {"mono": self.run_depth, "cross": self.cross_run_depth, "multi": self.run_depth}


def _check_arguments(collection: Collection, options: EvalOptions) -> list[str]:
    """Validate the options against the collection; return the languages to evaluate."""
    settings, langs = options.settings, options.langs
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise ConfigError(f"settings: expected a non-empty subset of {SETTINGS}, got {list(settings)}")
    if options.candidate not in CANDIDATE_MODES:
        raise ConfigError(f"candidate: expected one of {CANDIDATE_MODES}, got {options.candidate!r}")
    if not collection.queries or not collection.candidates:
        raise DataError(f"collection '{collection.name}' is empty: {len(collection.queries)} queries, "
                        f"{len(collection.candidates)} candidates")
    for kind, records in (("query", collection.queries), ("candidate", collection.candidates)):
        seen: set[str] = set()
        for record in records:
            if record.id in seen:
                raise DataError(f"collection '{collection.name}': duplicate {kind} id '{record.id}'")
            seen.add(record.id)
    available = collection.languages
    if langs is None:
        return available
    missing = [lang for lang in langs if lang not in available]
    if missing:
        raise ConfigError(f"langs: collection '{collection.name}' has no {', '.join(missing)} "
                          f"(it has: {', '.join(available)})")
    return sorted(dict.fromkeys(langs))


def _encode(encoder, texts: list[str], kind: str, cache_dir, options: EvalOptions) -> np.ndarray:
    vectors = encode_cached(encoder, texts, kind, cache_dir=cache_dir, batch_size=options.batch_size,
                            show_progress=options.show_progress)
    if not np.isfinite(vectors).all():
        raise ModelError(f"model '{encoder.name}' returned non-finite {kind} embeddings")
    return vectors


@dataclass
class _Selection:
    """The queries and candidates (sorted by language) of the evaluated languages."""

    queries: list
    candidates: list
    without_context: int   # candidates with no context, counted for candidate='sentence+context'

    @property
    def query_langs(self) -> list[str]:
        return sorted({q.lang for q in self.queries})

    @property
    def candidate_langs(self) -> list[str]:
        return sorted({c.lang for c in self.candidates})


def _select(collection: Collection, languages: list[str], candidate: str) -> _Selection:
    queries = [q for q in collection.queries if q.lang in languages]
    cands = sorted((c for c in collection.candidates if c.lang in languages), key=lambda c: c.lang)
    if not queries or not cands:
        raise DataError(f"collection '{collection.name}' has no queries or no candidates in {languages}")
    without_context = sum(not c.context for c in cands) if candidate == "sentence+context" else 0
    if without_context == len(cands):
        raise DataError(f"candidate='sentence+context' but no candidate of collection '{collection.name}' "
                        "has a context (load the collection with candidate='sentence+context')")
    return _Selection(queries, cands, without_context)


def evaluate_collection(encoder, collection: Collection, options: EvalOptions | None = None, *,
                        out_dir=None, cache_dir=None, debias=None, **option_fields) -> dict:
    """Evaluate `encoder` on `collection`; return the metrics.json structure.

    Options come as an `EvalOptions`, as keywords named like its fields (`settings=`, `langs=`,
    `run_depth=`, ...), or both (keywords win). With `out_dir`, also write metrics.json,
    per_query.jsonl, TREC runs and qrels per setting; `cache_dir` caches the embeddings.
    `debias` (a `models.debias_use.DebiasUse`) transforms the embeddings after encoding, so the
    cache, keyed by the model alone, serves debiased and plain runs alike.
    """
    options = replace(options or EvalOptions(), **option_fields)
    options = replace(options, settings=tuple(options.settings))
    languages = _check_arguments(collection, options)
    selection = _select(collection, languages, options.candidate)

    started = time.perf_counter()
    q_vecs = _encode(encoder, [q.text for q in selection.queries], "query", cache_dir, options)
    c_vecs = _encode(encoder, [candidate_text(c, options.candidate) for c in selection.candidates], "passage",
                     cache_dir, options)
    debias_info = None
    if debias is not None:
        q_vecs, c_vecs, debias_info = debias.apply_collection(encoder, collection, selection.queries, q_vecs,
                                                              selection.candidates, c_vecs)
    encoded = time.perf_counter()

    outputs = EvalOutputs(out_dir, options.settings) if out_dir else None
    scorer = _Scorer(c_vecs, _CandidatePool.of(selection.candidates), options, write_runs=outputs is not None)
    try:
        per_pair, per_multi = _score_all_languages(scorer, selection.queries, q_vecs, outputs)
    except BaseException:
        if outputs:
            outputs.abort()
        raise
    scored = time.perf_counter()

    query_langs, cand_langs = selection.query_langs, selection.candidate_langs
    result = _aggregate(options.settings, query_langs, cand_langs, per_pair, per_multi)
    counts = _counts(selection.queries, selection.candidates, query_langs, cand_langs, options.settings,
                     per_pair, per_multi)
    result = {"model": getattr(encoder, "name", "model"), "fingerprint": encoder.fingerprint(),
              "collection": collection.name, "langs": languages, "candidate": options.candidate,
              "tie_rule": metrics.TIE_RULE, **result,
              "counts": {**counts, "candidates_without_context": selection.without_context},
              "timing_s": {"encode": round(encoded - started, 3), "score": round(scored - encoded, 3)}}
    if debias_info is not None:
        result["debias"] = debias_info
    if outputs:
        outputs.finish(result)
    return result


@dataclass
class _CandidatePool:
    """The candidate pool sorted by language: ids, block starts, block of each candidate."""

    ids: list[str]
    block_starts: np.ndarray
    block_of: np.ndarray
    langs: list[str]
    by_group: dict[str, list[int]]

    @classmethod
    def of(cls, cands: list) -> _CandidatePool:
        """The pool of `cands` (already sorted by language)."""
        langs = sorted({c.lang for c in cands})
        block_starts = np.searchsorted([c.lang for c in cands], langs)
        block_of = np.repeat(np.arange(len(langs)), np.diff(np.append(block_starts, len(cands))))
        by_group = Collection("pool", [], cands).relevant_by_group()   # indices into cands
        return cls([c.id for c in cands], block_starts, block_of, langs, by_group)


@dataclass
class LanguageScores:
    """Per-query metrics of the queries of one language, in every setting, from one scoring pass."""

    lang: str
    queries: list
    search: object                                  # the `score_relevant` result (ranks, top-k lists)
    relevance: Relevance
    per_pair: dict[tuple[str, str], dict[str, np.ndarray]]   # (lang, candidate lang) -> metrics
    multi: dict[str, np.ndarray]                    # the multilingual pool's metrics + rank distance


def _score_all_languages(scorer: _Scorer, queries: list, q_vecs: np.ndarray, outputs):
    """(per_pair, per_multi) over every query language; each language's outputs written as it is scored."""
    per_pair: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    per_multi: dict[str, dict[str, np.ndarray]] = {}
    for lang in sorted({q.lang for q in queries}):
        rows = [i for i, q in enumerate(queries) if q.lang == lang]
        scores = scorer.score_language(lang, [queries[i] for i in rows], q_vecs[rows])
        per_pair.update(scores.per_pair)
        per_multi[lang] = scores.multi
        if outputs:
            outputs.add_language(scores, scorer.pool, scorer.options.run_depths())
    return per_pair, per_multi


@dataclass
class _Scorer:
    """Scores the queries of one language against the whole pool (sorted by language into blocks)."""

    c_vecs: np.ndarray
    pool: _CandidatePool
    options: EvalOptions
    write_runs: bool   # keep top-k lists for run files

    def _depths(self) -> tuple[int, int]:
        """(multi top-k, per-block top-k) the run files need; 0 without run files."""
        if not self.write_runs:
            return 0, 0
        settings, depths = self.options.settings, self.options.run_depths()
        block = max(depths[s] if s in settings else 0 for s in ("mono", "cross"))
        return (depths["multi"] if "multi" in settings else 0), block

    def score_language(self, lang: str, qs: list, q_vecs: np.ndarray) -> LanguageScores:
        pool = self.pool
        relevance = Relevance.from_lists([pool.by_group.get(q.group, []) for q in qs])
        topk, block_topk = self._depths()
        if "multi" in self.options.settings:   # language preference reads the top 10 past the relevant ones
            topk = max(topk, metrics.PREFERENCE_DEPTH + int(np.diff(relevance.indptr).max(initial=0)))
        res = score_relevant(q_vecs, self.c_vecs, relevance, block_starts=pool.block_starts, topk=topk,
                             block_topk=block_topk, max_chunk_bytes=self.options.max_chunk_bytes)
        rows, blocks = relevance.rows, pool.block_of[relevance.indices]
        per_pair = {}
        for b, y in enumerate(pool.langs):
            here = blocks == b
            ranks = metrics.pad_ranks(rows[here], res.block_ranks[here], len(qs))
            n_rel = np.bincount(rows[here], minlength=len(qs))
            per_pair[(lang, y)] = {"n_relevant": n_rel, "first_rank": ranks[:, 0],
                                   **metrics.per_query_metrics(ranks, n_rel)}
        n_rel = np.diff(relevance.indptr)
        ranks = metrics.pad_ranks(rows, res.pool_ranks, len(qs))
        # language bias: best rank of a relevant candidate in each language, spread over languages
        best = np.full((len(qs), len(pool.langs)), np.nan)
        np.fmin.at(best, (rows, blocks), res.pool_ranks.astype(np.float64))
        multi = {"n_relevant": n_rel, "first_rank": ranks[:, 0],
                 "rank_distance": metrics.rank_distance(best), **metrics.per_query_metrics(ranks, n_rel)}
        if res.topk_ids is not None and "multi" in self.options.settings:
            multi["language_preference"] = self._language_preference(lang, res, relevance, blocks)
        return LanguageScores(lang, qs, res, relevance, per_pair, multi)

    def _language_preference(self, lang: str, res, relevance: Relevance, blocks: np.ndarray) -> np.ndarray:
        """Per query: share of its top 10 in `lang` minus share of its relevant candidates in `lang`.

        The top 10 follow the tie rule of the ranks: the relevant candidates ranked <= 10 hold
        their places, the other places go to the best non-relevant candidates in (score, index)
        order - the first ones of `res.topk_ids` (deep enough: 10 + the most relevant of a query).
        """
        pool, nq, n_pool = self.pool, len(relevance.indptr) - 1, len(self.pool.ids)
        mine = pool.langs.index(lang) if lang in pool.langs else -1
        depth = min(metrics.PREFERENCE_DEPTH, n_pool)
        rows, top_rel = relevance.rows, res.pool_ranks <= depth
        top_in_lang = np.zeros((nq, depth), dtype=bool)
        occupied = np.zeros((nq, depth), dtype=bool)
        places = (rows[top_rel], res.pool_ranks[top_rel] - 1)
        top_in_lang[places], occupied[places] = blocks[top_rel] == mine, True
        # the free places, row by row in rank order, take the best non-relevant candidates in order
        ids = res.topk_ids
        is_rel = np.isin(np.arange(nq)[:, None] * n_pool + ids, rows * n_pool + relevance.indices)
        free = depth - occupied.sum(axis=1)
        taken = ~is_rel & (np.cumsum(~is_rel, axis=1) <= free[:, None])
        top_in_lang[~occupied] = pool.block_of[ids[taken]] == mine
        rel_mine = np.bincount(rows[blocks == mine], minlength=nq)
        return metrics.language_preference(top_in_lang, rel_mine, np.diff(relevance.indptr))


def _means(per_query: dict[str, np.ndarray]) -> dict[str, float | None]:
    return {m: metrics.mean_ignoring_nan(per_query[m]) for m in metrics.METRIC_NAMES}


def _aggregate(settings, query_langs, cand_langs, per_pair, per_multi) -> dict:
    """Per-pair means, per-language tables and macro averages per setting."""
    pair_means = {pair: _means(values) for pair, values in per_pair.items()}
    names = metrics.METRIC_NAMES
    pairs = {m: {x: {y: pair_means[(x, y)][m] for y in cand_langs} for x in query_langs} for m in names}
    per_language: dict[str, dict] = {}
    summary: dict[str, dict | None] = {}
    if "mono" in settings:
        mono = {x: pair_means[(x, x)] for x in query_langs if x in cand_langs}
        per_language["mono"] = mono
        summary["mono"] = {m: metrics.macro_mean({x: v[m] for x, v in mono.items()}) for m in names} if mono else None
    if "cross" in settings:
        cross_pairs = [(x, y) for x in query_langs for y in cand_langs if x != y]
        others = {x: [y for y in cand_langs if y != x] for x in query_langs}
        per_language["cross"] = {x: {m: metrics.macro_mean({y: pair_means[(x, y)][m] for y in ys}) for m in names}
                                 for x, ys in others.items() if ys}
        summary["cross"] = ({m: metrics.macro_mean({p: pair_means[p][m] for p in cross_pairs}) for m in names}
                            if cross_pairs else None)
    if "multi" in settings:
        multi = {x: _means(per_multi[x]) for x in query_langs}
        per_language["multi"] = multi
        summary["multi"] = {m: metrics.macro_mean({x: v[m] for x, v in multi.items()}) for m in names}
    return {"settings": summary,
            "rank_distance": _macro_per_query(per_multi, "rank_distance", query_langs, settings),
            "language_preference": _macro_per_query(per_multi, "language_preference", query_langs, settings),
            "per_language": per_language, "pairs": pairs}


def _macro_per_query(per_multi, name: str, query_langs, settings) -> dict | None:
    """{mean (macro over languages), per_language, queries (defined values)} of a multilingual
    per-query bias measure (rank distance, language preference); None without the multi setting."""
    if "multi" not in settings:
        return None
    values = {x: per_multi[x][name] for x in query_langs}
    by_lang = {x: metrics.mean_ignoring_nan(v) for x, v in values.items()}
    return {"mean": metrics.macro_mean(by_lang), "per_language": by_lang,
            "queries": int(sum(np.isfinite(v).sum() for v in values.values()))}


def _counts(queries, cands, query_langs, cand_langs, settings, per_pair, per_multi) -> dict:
    """Query / candidate counts and, per setting, the queries that had nothing relevant."""
    def none_relevant(n_rel):
        return int((n_rel == 0).sum())

    no_rel: dict[str, dict] = {}
    if "mono" in settings:
        by = {x: none_relevant(per_pair[(x, x)]["n_relevant"]) for x in query_langs if x in cand_langs}
        no_rel["mono"] = {"total": sum(by.values()), "by_language": by}
    if "cross" in settings:
        by = {f"{x}-{y}": none_relevant(per_pair[(x, y)]["n_relevant"])
              for x in query_langs for y in cand_langs if x != y}
        no_rel["cross"] = {"total": sum(by.values()), "by_pair": by}
    if "multi" in settings:
        by = {x: none_relevant(per_multi[x]["n_relevant"]) for x in query_langs}
        no_rel["multi"] = {"total": sum(by.values()), "by_language": by}
    return {"queries": len(queries), "candidates": len(cands),
            "queries_by_language": {x: sum(q.lang == x for q in queries) for x in query_langs},
            "candidates_by_language": {y: sum(c.lang == y for c in cands) for y in cand_langs},
            "distinct_query_texts": len({q.text for q in queries}),
            "no_relevant": no_rel}


def load_metrics(path) -> dict:
    """Read a metrics.json (a file, or a folder holding one)."""
    path = Path(path)
    path = path / "metrics.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("no metrics.json here (run `mixlingual evaluate --out` first)", path=str(path)) from None
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON: {err.msg}", path=str(path), line=err.lineno) from None
