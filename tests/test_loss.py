"""InfoNCE: hand-computed values, gradients, hard negatives, learnable temperature."""

from __future__ import annotations

import math

import pytest
import torch

from mixlingual.training.loss import InfoNCELoss


def hand_loss(q, p, tau):
    """Cross-entropy computed with plain Python loops over cosine scores."""
    total = 0.0
    for i in range(len(q)):
        scores = []
        for j in range(len(p)):
            cos = float(q[i] @ p[j] / (q[i].norm() * p[j].norm()))
            scores.append(cos / tau)
        log_z = math.log(sum(math.exp(s) for s in scores))
        total += log_z - scores[i]
    return total / len(q)


def test_matches_hand_computed_cross_entropy():
    torch.manual_seed(0)
    q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(3, 8)
    loss = InfoNCELoss(temperature=0.05)
    assert math.isclose(float(loss(q, p)), hand_loss(q, p, 0.05), rel_tol=1e-5)
    assert math.isclose(float(loss(q, p, n)), hand_loss(q, torch.cat([p, n]), 0.05), rel_tol=1e-5)


def test_gradient_flows_to_queries_and_passages():
    torch.manual_seed(1)
    q = torch.randn(5, 8, requires_grad=True)
    p = torch.randn(5, 8, requires_grad=True)
    n = torch.randn(2, 8, requires_grad=True)
    InfoNCELoss()(q, p, n).backward()
    for t in (q, p, n):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_hard_negatives_raise_the_loss_and_their_closeness_matters():
    torch.manual_seed(2)
    q = torch.randn(4, 16)
    p = q + 0.3 * torch.randn(4, 16)
    loss = InfoNCELoss(temperature=0.1)
    base = float(loss(q, p))
    far = float(loss(q, p, -q))           # hard negatives opposite to the queries: nearly no effect
    near = float(loss(q, p, q + 0.05 * torch.randn(4, 16)))  # closer than the positives
    assert base <= far < near
    assert near - base > 0.5


def test_learnable_temperature_gets_a_gradient():
    torch.manual_seed(3)
    loss = InfoNCELoss(temperature=0.05, learnable_temperature=True)
    assert math.isclose(loss.temperature, 0.05, rel_tol=1e-6)
    loss(torch.randn(4, 8), torch.randn(4, 8)).backward()
    assert loss.log_scale.grad is not None and loss.log_scale.grad != 0
    assert [n for n, _ in loss.named_parameters()] == ["log_scale"]
    assert list(InfoNCELoss().parameters()) == []


# ----- precision: float32 scores and cross-entropy under bf16 autocast ---------------------------

def _loss_and_grads(loss_fn, q, p, n, autocast: bool):
    q, p, n = (t.detach().clone().requires_grad_(True) for t in (q, p, n))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        value = loss_fn(q, p, n)
    value.backward()
    return value.detach().double(), [t.grad.double() for t in (q, p, n)]


def _near_duplicate_batch():
    """Close positives and hard negatives: score differences below bf16's step at 1 / 0.05."""
    torch.manual_seed(4)
    q = torch.randn(8, 64)
    return q, q + 0.3 * torch.randn(8, 64), q[:4] + 0.35 * torch.randn(4, 64)


def test_bf16_autocast_keeps_logits_loss_and_gradients_in_float32():
    q, p, n = _near_duplicate_batch()
    loss = InfoNCELoss(temperature=0.05)
    reference, reference_grads = _loss_and_grads(loss, q, p, n, autocast=False)
    value, grads = _loss_and_grads(loss, q, p, n, autocast=True)
    assert abs(float(value - reference)) < 1e-5, (float(value), float(reference))
    for got, want in zip(grads, reference_grads):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), float((got - want).abs().max())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert loss.scores(q, p).dtype == torch.float32


def test_bf16_logits_would_fail_the_tolerance():
    """The tolerance above is tight enough to catch bf16 logits (what the old code produced)."""
    q, p, n = _near_duplicate_batch()
    loss = InfoNCELoss(temperature=0.05)
    bf16_logits = (loss.scores(q, torch.cat([p, n])).bfloat16().float())
    bf16 = float(torch.nn.functional.cross_entropy(bf16_logits, torch.arange(8)))
    assert abs(bf16 - float(loss(q, p, n))) > 1e-5


def test_st_group_aware_loss_is_float32_under_autocast():
    from mixlingual.integrations.sentence_transformers import GroupAwareMultipleNegativesRankingLoss

    torch.manual_seed(5)
    a = torch.randn(64) + 0.5 * torch.randn(16, 64)   # similar anchors: hard in-batch negatives
    p = a + 0.2 * torch.randn(16, 64)
    st_loss = GroupAwareMultipleNegativesRankingLoss(model=None, scale=20.0)
    labels = torch.tensor([0, 0, *range(1, 15)])
    reference = st_loss.loss_from_embeddings([a, p], labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = st_loss.loss_from_embeddings([a, p], labels)
    assert abs(float(value) - float(reference)) < 1e-5, (float(value), float(reference))
    assert value.dtype == torch.float32


# ----- false negatives: columns equal to the query's own positive text are masked ------------------

def test_same_text_mask_hides_duplicates_of_the_own_positive_but_not_the_own_column():
    from mixlingual.training.loss import same_text_mask

    own = torch.tensor([10, 20, 10])
    columns = torch.tensor([10, 20, 10, 30, 20])      # 3 positives, then hard negatives 30 and 20
    mask = same_text_mask(own, columns, torch.arange(3))
    assert mask.tolist() == [[False, False, True, False, False],
                             [False, False, False, False, True],
                             [True, False, False, False, False]]


def test_loss_masks_identical_positives_and_hard_negatives():
    torch.manual_seed(6)
    q, n = torch.randn(3, 8), torch.randn(2, 8)
    p = q + 2.0 * torch.randn(3, 8)
    p[2] = p[0]            # pairs 0 and 2 share a paragraph
    n[1] = p[1]            # a hard negative repeats pair 1's positive
    ids = torch.tensor([1, 2, 1, 7, 2])
    loss = InfoNCELoss(temperature=0.05)
    masked = float(loss(q, p, n, passage_text_ids=ids))
    # by hand: each query's softmax over the columns that are not copies of its own positive
    keep = [[0, 1, 3, 4], [0, 1, 2, 3], [1, 2, 3, 4]]
    passages = torch.cat([p, n])
    expected = sum(hand_loss(q[i:i + 1], passages[[i] + [j for j in keep[i] if j != i]], 0.05)
                   for i in range(3)) / 3
    assert math.isclose(masked, expected, rel_tol=1e-5), (masked, expected)
    assert masked < float(loss(q, p, n))  # unmasked, the copies count as negatives as hard as the positive
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert math.isfinite(float(loss(q, p, n, passage_text_ids=ids)))


def test_text_ids_must_name_every_passage():
    with pytest.raises(ValueError, match="passage_text_ids"):
        InfoNCELoss()(torch.randn(2, 4), torch.randn(2, 4), torch.randn(1, 4), passage_text_ids=torch.tensor([1, 2]))


def _ddp_masked_loss_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        q, p, n, ids = _global_masked_batch()
        negatives_of = [slice(0, 1), slice(1, 3)]          # ragged: 1 and 2 hard negatives
        mine = slice(2 * rank, 2 * rank + 2)
        local_ids = torch.cat([ids[:4][mine], ids[4:][negatives_of[rank]]])
        value = InfoNCELoss(temperature=0.05)(q[mine], p[mine], n[negatives_of[rank]], passage_text_ids=local_ids)
        torch.save(value.detach(), f"{out_dir}/loss-{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _global_masked_batch():
    torch.manual_seed(7)
    q = torch.randn(4, 8)
    q[3] = q[0] + 0.3 * torch.randn(8)   # two questions on one paragraph
    p, n = q + 0.5 * torch.randn(4, 8), torch.randn(3, 8)
    p[3] = p[0]          # rank 1's second pair repeats rank 0's first positive
    n[1] = p[1]          # rank 1's first hard negative repeats rank 0's second positive
    ids = torch.tensor([1, 2, 3, 1, 8, 2, 9])   # 4 positives, then 3 hard negatives
    return q, p, n, ids


@pytest.mark.slow
def test_mask_works_on_columns_gathered_across_ranks(tmp_path):
    """2 gloo ranks: the mean of the ranks' masked losses equals the one-process masked loss."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_masked_loss_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    per_rank = [float(torch.load(tmp_path / f"loss-{r}.pt")) for r in range(2)]
    q, p, n, ids = _global_masked_batch()
    single = float(InfoNCELoss(temperature=0.05)(q, p, n, passage_text_ids=ids))
    assert math.isclose(sum(per_rank) / 2, single, rel_tol=1e-5)
    assert not math.isclose(single, float(InfoNCELoss(temperature=0.05)(q, p, n)), rel_tol=1e-3)
