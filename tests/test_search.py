"""Chunked exact scoring equals the dense reference; FAISS agrees; the embedding cache hits and heals."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from mixlingual.evaluation import metrics
from mixlingual.evaluation.embedding_cache import EmbeddingCache, encode_cached
from mixlingual.evaluation.search import Relevance, exact_topk, faiss_topk, score_relevant, write_trec_run


def _problem(seed=0, nq=37, nc=90, dim=8, quantize=False):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((nq, dim)).astype(np.float32)
    c = rng.standard_normal((nc, dim)).astype(np.float32)
    if quantize:  # coarse values -> many exactly tied scores, exercising the tie rule
        q, c = np.round(q), np.round(c)
        c[5] = c[6] = c[7]
    rel = [rng.choice(nc, size=rng.integers(0, 6), replace=False) for _ in range(nq)]
    return q, c, rel


@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("chunk_bytes", [1, 4 * 90 * 5, 1 << 20])
def test_chunked_ranks_equal_dense_reference(quantize, chunk_bytes):
    q, c, rel = _problem(quantize=quantize)
    if quantize:
        rel[0] = np.array([5, 6, 7, 40])  # tied relevant candidates
    relevance = Relevance.from_lists(rel)
    starts = [0, 30, 55]
    res = score_relevant(q, c, relevance, block_starts=starts, max_chunk_bytes=chunk_bytes)
    scores = q @ c.T
    mask = np.zeros(scores.shape, bool)
    mask[relevance.rows, relevance.indices] = True
    expected_pool = metrics.relevant_ranks_dense(scores, mask)
    got_pool = metrics.pad_ranks(relevance.rows, res.pool_ranks, len(q))
    np.testing.assert_array_equal(got_pool[:, :expected_pool.shape[1]], expected_pool)
    for s, e in zip(starts, starts[1:] + [len(c)]):
        in_block = (relevance.indices >= s) & (relevance.indices < e)
        expected = metrics.relevant_ranks_dense(scores[:, s:e], mask[:, s:e])
        got = metrics.pad_ranks(relevance.rows[in_block], res.block_ranks[in_block], len(q))
        np.testing.assert_array_equal(got[:, :expected.shape[1]], expected)


def test_topk_lists_and_faiss_agree():
    q, c, rel = _problem(seed=3, nc=200)
    scores = q @ c.T
    ids, top = exact_topk(q, c, 10, max_chunk_bytes=4 * 200 * 7)
    np.testing.assert_array_equal(ids, np.argsort(-scores, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(top, -np.sort(-scores, axis=1)[:, :10], rtol=1e-6)
    f_ids, f_scores = faiss_topk(q, c, 10)
    np.testing.assert_array_equal(f_ids, ids)
    np.testing.assert_allclose(f_scores, top, rtol=1e-5)
    ivf_ids, _ = faiss_topk(q, c, 10, index="ivf", nlist=4, nprobe=4)  # probing every list = exact
    np.testing.assert_array_equal(ivf_ids, ids)
    res = score_relevant(q, c, Relevance.from_lists(rel), block_starts=[0, 120], block_topk=5)
    np.testing.assert_array_equal(res.block_topk_ids[:, 1], 120 + np.argsort(-scores[:, 120:], 1)[:, :5])
    small_last = score_relevant(q, c, Relevance.from_lists(rel), block_starts=[0, 196], block_topk=6)
    np.testing.assert_array_equal(small_last.block_topk_ids[:, 1, 4:], -1)  # a block of 4 pads with -1
    assert set(small_last.block_topk_ids[0, 1, :4]) == {196, 197, 198, 199}
    with pytest.raises(ValueError):
        score_relevant(q, c, Relevance.from_lists(rel), block_starts=[3])


def test_write_trec_run(tmp_path):
    path = tmp_path / "runs" / "x.trec"
    write_trec_run(path, ["a", "b"], ["d0", "d1", "d2"], np.array([[2, 0], [1, 2]]),
                   np.array([[0.9, 0.5], [0.7, 0.1]]), tag="t")
    assert path.read_text().splitlines() == ["a Q0 d2 1 0.900000 t", "a Q0 d0 2 0.500000 t",
                                             "b Q0 d1 1 0.700000 t", "b Q0 d2 2 0.100000 t"]


class CountingEncoder:
    """A deterministic fake encoder that records what it was asked to encode."""

    name, dim = "fake", 4

    def __init__(self, fingerprint="fp1"):
        self.calls: list[list[str]] = []
        self._fp = fingerprint

    def fingerprint(self):
        return self._fp

    def encode(self, texts, kind="passage", batch_size=64, show_progress=None):
        self.calls.append(list(texts))
        return np.array([[len(t), kind == "query", t.count("a"), 1.0] for t in texts], np.float32)


def test_cache_hits_and_dedupes(tmp_path):
    enc = CountingEncoder()
    first = encode_cached(enc, ["aa", "b", "aa"], "passage", cache_dir=tmp_path)
    assert enc.calls == [["aa", "b"]]  # each distinct text once
    np.testing.assert_array_equal(first[0], first[2])
    again = encode_cached(enc, ["b", "ccc", "aa"], "passage", cache_dir=tmp_path)
    assert enc.calls[1] == ["ccc"]  # only the new text
    np.testing.assert_array_equal(again[[0, 2]], first[[1, 0]])
    assert encode_cached(enc, ["b"], "query", cache_dir=tmp_path)[0, 1] == 1.0  # kinds are separate
    assert enc.calls[2] == ["b"]
    other = CountingEncoder("fp2")  # another model never sees these vectors
    encode_cached(other, ["aa"], "passage", cache_dir=tmp_path)
    assert other.calls == [["aa"]]
    encode_cached(enc, ["x"], "passage")  # no cache_dir: nothing is written anywhere new
    assert sorted(p.name for p in (tmp_path / "fp1" / "passage").glob("shard-*.npy")) == ["shard-1.npy",
                                                                                        "shard-2.npy"]


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path):
    enc = CountingEncoder()
    expected = encode_cached(enc, ["aa", "b"], "passage", cache_dir=tmp_path)
    shard = tmp_path / "fp1" / "passage" / "shard-1.npy"
    shard.write_bytes(shard.read_bytes()[:-8])  # truncated, as by a crash or a bad disk
    with pytest.warns(UserWarning, match="corrupt"):
        got = encode_cached(enc, ["aa", "b"], "passage", cache_dir=tmp_path)
    assert enc.calls[-1] == ["aa", "b"]
    np.testing.assert_array_equal(got, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed: no warning and no encoding any more
        encode_cached(enc, ["aa", "b"], "passage", cache_dir=tmp_path)
    assert len(enc.calls) == 2
    index = tmp_path / "fp1" / "passage" / "index.json"
    index.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        encode_cached(enc, ["aa"], "passage", cache_dir=tmp_path)
    assert enc.calls[-1] == ["aa"] and json.loads(index.read_text())["dim"] == 4
    assert len(EmbeddingCache(tmp_path, "fp1", "passage").load()) == 1


def test_chunked_ranks_property():
    """Any pool, block layout and chunk size: ranks equal the dense reference (ties included)."""
    hypothesis = pytest.importorskip("hypothesis")  # here, not at module level: only this test needs it
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=40, deadline=None)
    @hypothesis.given(seed=st.integers(0, 10_000), nq=st.integers(1, 9), nc=st.integers(1, 30),
                      n_blocks=st.integers(1, 4), chunk_rows=st.integers(1, 5))
    def check(seed, nq, nc, n_blocks, chunk_rows):
        rng = np.random.default_rng(seed)
        q = rng.integers(-2, 3, (nq, 3)).astype(np.float32)  # small integers: many exact ties
        c = rng.integers(-2, 3, (nc, 3)).astype(np.float32)
        starts = sorted({0, *rng.integers(1, max(nc, 2), n_blocks - 1).tolist()} - {nc}) if nc > 1 else [0]
        rel = [rng.choice(nc, size=rng.integers(0, nc + 1), replace=False) for _ in range(nq)]
        relevance = Relevance.from_lists(rel)
        res = score_relevant(q, c, relevance, block_starts=starts, max_chunk_bytes=4 * nc * chunk_rows)
        scores, mask = q @ c.T, np.zeros((nq, nc), bool)
        mask[relevance.rows, relevance.indices] = True
        expected = metrics.relevant_ranks_dense(scores, mask)  # the whole pool
        got = metrics.pad_ranks(relevance.rows, res.pool_ranks, nq)
        np.testing.assert_array_equal(got[:, :expected.shape[1]], expected)
        for s, e in zip(starts, starts[1:] + [nc]):
            inside = (relevance.indices >= s) & (relevance.indices < e)
            expected = metrics.relevant_ranks_dense(scores[:, s:e], mask[:, s:e])
            got = metrics.pad_ranks(relevance.rows[inside], res.block_ranks[inside], nq)
            np.testing.assert_array_equal(got[:, :expected.shape[1]], expected)

    check()


def test_topk_keeps_the_lowest_indices_among_ties_at_the_cut():
    """Ties at the k-th place keep the lowest column indices (argpartition alone keeps arbitrary
    ones): the top k is the first k of the (score descending, index) order."""
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 2, (40, 3)).astype(np.float32)
    candidates = rng.integers(0, 2, (60, 3)).astype(np.float32)    # many exact ties
    ids, scores = exact_topk(queries, candidates, 7)
    full = queries @ candidates.T
    expected = np.lexsort((np.broadcast_to(np.arange(60), full.shape), -full), axis=1)[:, :7]
    assert np.array_equal(ids, expected)
    assert np.array_equal(scores, np.take_along_axis(full, expected, 1))
