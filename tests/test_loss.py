"""InfoNCE: hand-computed values, gradients, hard negatives, learnable temperature."""

from __future__ import annotations

import math

import torch

from mixlingual.loss import InfoNCELoss


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
