"""Scoring queries against a candidate pool: exact and chunked (bounded memory), or FAISS top-k.

`score_relevant` is what evaluation needs: for every (query, relevant candidate) pair, the rank
of that candidate in the whole pool and within its own *block* (a contiguous slice of the pool,
e.g. one language), plus optional top-k lists.  It scores a chunk of queries at a time and never
holds the full queries x pool matrix, nor sorts whole rows: a rank is 1 + the number of
candidates that score higher, counted per block with one comparison pass per relevant slot.
Ties follow `mixlingual.evaluation.metrics.TIE_RULE` (pessimistic), so the ranks equal
`metrics.relevant_ranks_dense` exactly.

`faiss_topk` serves top-k retrieval from large corpora (IndexFlatIP, or IVF when asked).
Scores are inner products: with normalized embeddings, cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixlingual.io import atomic_open

DEFAULT_CHUNK_BYTES = 64 << 20  # one chunk's score matrix; peak is about 2.5x this


@dataclass
class Relevance:
    """Relevant candidates per query in CSR form: query q owns indices[indptr[q]:indptr[q+1]]."""

    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def from_lists(cls, lists) -> "Relevance":
        lists = [np.unique(np.asarray(x, dtype=np.int64)) for x in lists]  # sorted: tie order
        indptr = np.concatenate(([0], np.cumsum([len(x) for x in lists]))).astype(np.int64)
        indices = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        return cls(indptr, indices.astype(np.int64))

    @property
    def rows(self) -> np.ndarray:
        """The query index of every entry of `indices`."""
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))


@dataclass
class ScoringResult:
    """Ranks of every relevant entry (aligned with `Relevance.indices`) and optional top-k lists."""

    pool_ranks: np.ndarray            # (n_entries,) 1-based rank in the whole pool
    block_ranks: np.ndarray           # (n_entries,) 1-based rank within the entry's block
    topk_ids: np.ndarray | None = None        # (nq, k) pool-wide, best first
    topk_scores: np.ndarray | None = None
    block_topk_ids: np.ndarray | None = None  # (nq, n_blocks, k) per block, global ids (-1: none)
    block_topk_scores: np.ndarray | None = None


def _sorted_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k column ids and scores per row, best first, ties by column index - also at the k-th
    place: of the candidates tied with the k-th score, the lowest indices are kept (argpartition
    alone keeps arbitrary ones, and language preference counts who is in the top k)."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.zeros((len(scores), 0), np.int64), np.zeros((len(scores), 0), np.float32)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]          # the k-th best score per row
    above = scores > kth
    tied = scores == kth
    keep = above | tied
    need = k - above.sum(axis=1)                                     # places left for tied columns
    crowded = np.nonzero(tied.sum(axis=1) > need)[0]                 # rows with more ties than places
    if crowded.size:  # keep the first `need` tied columns of those rows, by index
        first = np.cumsum(tied[crowded], axis=1) <= need[crowded, None]
        keep[crowded] = above[crowded] | (tied[crowded] & first)
    part = np.nonzero(keep)[1].reshape(len(scores), k)
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, 1), np.take_along_axis(part_scores, order, 1)


def score_relevant(queries: np.ndarray, candidates: np.ndarray, relevance: Relevance, *,
                   block_starts=(0,), topk: int = 0, block_topk: int = 0,
                   max_chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> ScoringResult:
    """Exact ranks of the relevant candidates of every query, in chunks of queries.

    `block_starts` are the first pool indices of contiguous blocks (must start with 0); each
    relevant candidate also gets its rank within its own block.  `topk` / `block_topk` > 0 also
    return top-k lists (pool-wide / per block) for run files.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    n_q, n_c = len(queries), len(candidates)
    starts = np.asarray(block_starts, dtype=np.int64)
    if n_c == 0 or starts.size == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n_c:
        raise ValueError(f"block_starts {starts.tolist()} must rise from 0 within a pool of {n_c}")
    ends = np.append(starts[1:], n_c)
    block_of = np.repeat(np.arange(len(starts)), ends - starts)
    n_entries = len(relevance.indices)
    pool_ranks = np.zeros(n_entries, np.int64)
    block_ranks = np.zeros(n_entries, np.int64)
    out = ScoringResult(pool_ranks, block_ranks)
    if topk:
        out.topk_ids = np.zeros((n_q, min(topk, n_c)), np.int64)
        out.topk_scores = np.zeros((n_q, min(topk, n_c)), np.float32)
    if block_topk:
        # blocks smaller than the depth are padded with id -1 and score -inf
        width = min(block_topk, int((ends - starts).max()))
        out.block_topk_ids = np.full((n_q, len(starts), width), -1, np.int64)
        out.block_topk_scores = np.full((n_q, len(starts), width), -np.inf, np.float32)
    chunk = max(1, int(max_chunk_bytes // (4 * n_c)))
    for a in range(0, n_q, chunk):
        b = min(a + chunk, n_q)
        scores = queries[a:b] @ candidates.T
        _rank_chunk(scores, relevance, a, b, starts, block_of, pool_ranks, block_ranks)
        if topk:
            out.topk_ids[a:b], out.topk_scores[a:b] = _sorted_topk(scores, topk)
        if block_topk:
            for j, (s, e) in enumerate(zip(starts, ends)):
                ids, sc = _sorted_topk(scores[:, s:e], out.block_topk_ids.shape[2])
                out.block_topk_ids[a:b, j, :ids.shape[1]] = ids + s
                out.block_topk_scores[a:b, j, :ids.shape[1]] = sc
    return out


def _rank_chunk(scores, relevance, a, b, starts, block_of, pool_ranks, block_ranks) -> None:
    """Fill the ranks of the relevant entries of queries a..b from their score rows."""
    lo, hi = relevance.indptr[a], relevance.indptr[b]
    if hi == lo:
        return
    counts = np.diff(relevance.indptr[a:b + 1])
    rows = np.repeat(np.arange(b - a), counts)
    slots = np.arange(hi - lo) - np.repeat(relevance.indptr[a:b] - lo, counts)
    width = int(counts.max())
    rel = np.full((b - a, width), -1, np.int64)
    rel[rows, slots] = relevance.indices[lo:hi]
    valid = rel >= 0
    rel_scores = np.where(valid, np.take_along_axis(scores, np.maximum(rel, 0), 1), np.inf)
    rel_block = block_of[np.maximum(rel, 0)]
    pool_ge = np.zeros((b - a, width), np.int64)
    block_ge = np.zeros((b - a, width), np.int64)
    ends = np.append(starts[1:], scores.shape[1])
    for j in range(width):
        # per block: how many candidates score >= this relevant candidate (a uint8 view summed
        # into int32 is several times faster than np.add.reduceat over booleans)
        at_least = (scores >= rel_scores[:, j:j + 1]).view(np.uint8)
        per_block = np.stack([at_least[:, s:e].sum(axis=1, dtype=np.int32) for s, e in zip(starts, ends)], 1)
        pool_ge[:, j] = per_block.sum(axis=1)
        block_ge[:, j] = per_block[np.arange(b - a), rel_block[:, j]]
    # pessimistic ties: among tied relevant candidates only the lower pool indices go first
    tied_after = ((rel_scores[:, :, None] == rel_scores[:, None, :]) & valid[:, None, :]
                  & (rel[:, None, :] > rel[:, :, None]))
    same_block = rel_block[:, :, None] == rel_block[:, None, :]
    pool_ranks[lo:hi] = (pool_ge - tied_after.sum(2))[rows, slots]
    block_ranks[lo:hi] = (block_ge - (tied_after & same_block).sum(2))[rows, slots]


def exact_topk(queries: np.ndarray, candidates: np.ndarray, k: int,
               max_chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (ids, scores) by chunked inner products; best first, ties by index."""
    empty = Relevance(np.zeros(len(queries) + 1, np.int64), np.zeros(0, np.int64))
    res = score_relevant(queries, candidates, empty, topk=k, max_chunk_bytes=max_chunk_bytes)
    return res.topk_ids, res.topk_scores


def faiss_topk(queries: np.ndarray, candidates: np.ndarray, k: int, *, index: str = "flat",
               nlist: int | None = None, nprobe: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (ids, scores) by inner product with FAISS: exact `IndexFlatIP` or approximate IVF.

    IVF (`index="ivf"`) trains `nlist` (default ~4 sqrt(n)) centroids on the candidates and
    probes `nprobe` lists per query: much faster on millions of candidates, not exact.
    """
    import faiss

    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    dim = candidates.shape[1]
    if index == "flat":
        searcher = faiss.IndexFlatIP(dim)
    elif index == "ivf":
        nlist = nlist or max(1, int(4 * np.sqrt(len(candidates))))
        quantizer = faiss.IndexFlatIP(dim)
        # the faiss wrapper keeps a reference to the quantizer for the life of the index
        searcher = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        searcher.train(candidates)
        searcher.nprobe = min(nprobe, nlist)
    else:
        raise ValueError(f"index must be 'flat' or 'ivf', got {index!r}")
    searcher.add(candidates)
    scores, ids = searcher.search(queries, min(k, len(candidates)))
    return ids.astype(np.int64), scores


def write_trec_run(path: Path, query_ids, candidate_ids, topk_ids: np.ndarray,
                   topk_scores: np.ndarray, tag: str = "mixlingual") -> None:
    """Write a TREC run file (qid Q0 docid rank score tag), atomically (temp file + rename)."""
    with atomic_open(path, "w") as f:
        for qid, ids, scores in zip(query_ids, topk_ids, topk_scores):
            f.writelines(f"{qid} Q0 {candidate_ids[c]} {r} {s:.6f} {tag}\n"
                         for r, (c, s) in enumerate(zip(ids, scores), start=1) if c >= 0)
