"""Retrieval metrics as pure, vectorized functions over the ranks of relevant candidates.

Every metric here takes a *rank matrix*: one row per query, holding the 1-based ranks of that
query's relevant candidates sorted ascending, padded with `inf`.  A relevant candidate that was
never ranked (e.g. outside a top-k search) also has rank `inf`; it still counts in
`n_relevant`, so AP and recall are never inflated by a cut-off.  No model code lives here.

Definitions (binary relevance; see docs/evaluation.md):

* AP - average precision over the *full* ranking, all relevant candidates counted (LAReQA mAP):
  ``AP = 1/R * sum_k k / rank_k`` over the relevant candidates sorted by rank.
* success@k (reported as ``r@k``) - 1 if at least one relevant candidate is in the top k.
  With one relevant candidate per query (mono / cross settings) it equals recall@k.
* recall@k - fraction of the relevant candidates found in the top k (TREC ``recall_k``).
* RR@k - reciprocal rank of the first relevant candidate, 0 beyond rank k (``recip_rank``).
* nDCG@k - binary gains, log2 discount, ideal ranking of min(R, k) relevant candidates.
* rank distance - per query, the spread (max - min) of the best rank in each language.
* language preference - per query, the share of its top 10 in its own language minus the share
  of its relevant candidates in that language (0 = no preference, > 0 = towards its language).

Tie rule ("pessimistic"): candidates are ordered by score descending; a relevant candidate that
ties with non-relevant ones is placed after all of them, and tied relevant candidates are ordered
by their index in the pool.  This is a true permutation, so every metric is computed from one
consistent ranking, and a collapsed model (all scores equal) gets the worst possible scores.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TIE_RULE = "pessimistic: a relevant candidate ranks after every non-relevant one with an equal score"


def relevant_ranks_dense(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Reference ranks from a full score matrix (nq, nc) and a boolean relevance mask.

    Sorts every row (key: score descending, non-relevant first among ties, then index), so it
    needs the full matrix; `mixlingual.evaluation.search` computes the same ranks in bounded memory.
    Returns the rank matrix (nq, max R), inf-padded.
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    nq, nc = scores.shape
    index = np.broadcast_to(np.arange(nc), (nq, nc))
    # lexsort: last key is primary -> (-score), then relevant (False first), then index
    order = np.lexsort((index, relevant, -scores), axis=-1)
    rank_of = np.empty_like(order)
    np.put_along_axis(rank_of, order, np.arange(1, nc + 1)[None, :].repeat(nq, 0), axis=1)
    rows, cols = np.nonzero(relevant)
    return pad_ranks(rows, rank_of[rows, cols].astype(np.float64), nq)


def pad_ranks(rows: np.ndarray, ranks: np.ndarray, n_rows: int) -> np.ndarray:
    """Group flat (row, rank) pairs into an inf-padded rank matrix, each row sorted ascending."""
    rows = np.asarray(rows, dtype=np.int64)
    ranks = np.asarray(ranks, dtype=np.float64)
    counts = np.bincount(rows, minlength=n_rows)
    width = int(counts.max()) if counts.size and rows.size else 0
    out = np.full((n_rows, max(width, 1)), np.inf)
    if rows.size:
        order = np.lexsort((ranks, rows))
        rows, ranks = rows[order], ranks[order]
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out[rows, np.arange(rows.size) - starts[rows]] = ranks
    return out


def _n_relevant(ranks: np.ndarray, n_relevant) -> np.ndarray:
    if n_relevant is None:
        return np.isfinite(ranks).sum(axis=1)
    return np.asarray(n_relevant, dtype=np.int64)


def average_precision(ranks: np.ndarray, n_relevant=None) -> np.ndarray:
    """AP per query over the full ranking; NaN for a query with no relevant candidate."""
    n_rel = _n_relevant(ranks, n_relevant)
    position = np.arange(1, ranks.shape[1] + 1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (position / ranks).sum(axis=1) / np.where(n_rel > 0, n_rel, np.nan)


def reciprocal_rank(ranks: np.ndarray, k: int | None = 10, n_relevant=None) -> np.ndarray:
    """Reciprocal rank of the first relevant candidate (0 if beyond k); NaN if none relevant."""
    first = ranks[:, 0]
    rr = np.where(first <= (k or np.inf), 1.0 / first, 0.0)
    return np.where(_n_relevant(ranks, n_relevant) > 0, rr, np.nan)


def success_at_k(ranks: np.ndarray, k: int, n_relevant=None) -> np.ndarray:
    """1.0 if a relevant candidate is within the top k, else 0.0 (NaN if none relevant)."""
    hit = (ranks[:, 0] <= k).astype(np.float64)
    return np.where(_n_relevant(ranks, n_relevant) > 0, hit, np.nan)


def recall_at_k(ranks: np.ndarray, k: int, n_relevant=None) -> np.ndarray:
    """Fraction of the relevant candidates found within the top k (NaN if none relevant)."""
    n_rel = _n_relevant(ranks, n_relevant)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks <= k).sum(axis=1) / np.where(n_rel > 0, n_rel, np.nan)


def ndcg_at_k(ranks: np.ndarray, k: int = 10, n_relevant=None) -> np.ndarray:
    """Binary nDCG@k: DCG of the relevant candidates in the top k over the ideal DCG."""
    n_rel = _n_relevant(ranks, n_relevant)
    with np.errstate(divide="ignore"):
        gains = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    ideal = np.where(n_rel > 0, discounts[np.clip(n_rel, 1, k) - 1], np.nan)
    return gains.sum(axis=1) / ideal


def rank_distance(best_rank_per_language: np.ndarray) -> np.ndarray:
    """Per query: max minus min over languages of the best rank of a relevant candidate there.

    Input (nq, n_languages) with NaN where a query has no relevant candidate in a language;
    NaN for queries with relevant candidates in fewer than two languages.
    """
    best = np.asarray(best_rank_per_language, dtype=np.float64)
    present = np.isfinite(best)
    spread = np.where(present, best, -np.inf).max(axis=1) - np.where(present, best, np.inf).min(axis=1)
    return np.where(present.sum(axis=1) >= 2, spread, np.nan)


PREFERENCE_DEPTH = 10  # language preference looks at each query's top 10


def language_preference(top_in_language: np.ndarray, relevant_in_language, n_relevant) -> np.ndarray:
    """Per query: share of its top-k in its own language minus share of its relevant candidates there.

    `top_in_language` (nq, k) bool: whether the candidate at each top-k position (ranked by the
    tie rule) is in the query's language, k = min(PREFERENCE_DEPTH, pool size);
    `relevant_in_language` / `n_relevant` (nq,): the query's relevant candidates in its language /
    in all. 0 means the top k holds the query's language as often as the relevant set does; NaN
    for a query with no relevant candidate.
    """
    top = np.asarray(top_in_language, dtype=bool)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    in_lang = np.asarray(relevant_in_language, dtype=np.float64)
    if top.ndim != 2 or top.shape[1] == 0 or len(top) != len(n_rel) or in_lang.shape != n_rel.shape:
        raise ValueError(f"need top_in_language (nq, k>0) and two (nq,) counts, got {top.shape}, "
                         f"{in_lang.shape}, {n_rel.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, top.mean(axis=1) - in_lang / np.where(n_rel > 0, n_rel, np.nan), np.nan)


def bitext_accuracy(top1: np.ndarray, gold: np.ndarray) -> float:
    """Tatoeba-style accuracy: share of sources whose nearest target is the aligned one."""
    top1, gold = np.asarray(top1), np.asarray(gold)
    if top1.shape != gold.shape or top1.size == 0:
        raise ValueError(f"need equal, non-empty shapes, got {top1.shape} and {gold.shape}")
    return float((top1 == gold).mean())


def per_query_metrics(ranks: np.ndarray, n_relevant=None) -> dict[str, np.ndarray]:
    """All standard per-query metrics of one setting (NaN rows = queries with nothing relevant)."""
    return {
        "map": average_precision(ranks, n_relevant),
        "r@1": success_at_k(ranks, 1, n_relevant),
        "r@10": success_at_k(ranks, 10, n_relevant),
        "mrr@10": reciprocal_rank(ranks, 10, n_relevant),
        "ndcg@10": ndcg_at_k(ranks, 10, n_relevant),
        "recall@100": recall_at_k(ranks, 100, n_relevant),
    }


# the keys of `per_query_metrics`, in report order
METRIC_NAMES: tuple[str, ...] = ("map", "r@1", "r@10", "mrr@10", "ndcg@10", "recall@100")


def mean_ignoring_nan(values: np.ndarray) -> float | None:
    """Mean over the defined (non-NaN) values; None when there is none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def macro_mean(by_key: Mapping[object, float | None]) -> float | None:
    """Unweighted mean over groups (languages or pairs), skipping undefined groups."""
    defined = [v for v in by_key.values() if v is not None]
    return float(np.mean(defined)) if defined else None
