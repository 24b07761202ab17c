"""Cached large batches (GradCache, Gao et al. 2021): `train.mini_batch: N`.

An in-batch contrastive loss couples every pair of the batch, so the batch cannot simply be cut
into accumulation steps: each query must still see every passage. What the loss needs from the
encoder, though, is only the embeddings. One micro-batch of B pairs therefore runs in four
steps, the memory of the encoder's graph growing with N, not B:

1. embed the batch chunk by chunk (N pairs each) under `torch.no_grad()`, recording the RNG
   state before each chunk;
2. compute the task's loss on the cached embeddings (detached leaves) and its gradient with
   respect to them (and to the loss's own parameters, e.g. a learnable temperature) - under DDP
   the loss gathers embeddings across ranks here, so this gradient already holds every rank's
   loss;
3. re-embed each chunk with a graph, after restoring its recorded RNG state so that dropout
   draws the same masks as in step 1, and back-propagate the cached gradient into it through
   the surrogate `sum(embedding * gradient)`, whose gradient with respect to the embedding is
   exactly the cached one; the loss parameters' gradient rides on the last chunk's surrogate
   as `sum(parameter * gradient)`;
4. leave the RNG where step 1 left it, so the random stream is that of one chunk-wise forward.

The parameter gradients equal those of one graph over the whole batch with the same dropout
masks (tests/test_gradcache.py: 1e-5 relative in fp32). The loss is the task's
(`loss_from_embeddings`, the same function its `loss(batch)` uses) and the loop is the one in
`mixlingual.training.loop`, which calls `cached_forward_backward` instead of `loss.backward()`.

DDP: the re-forwards run through the training engine (`training.setup.wrap_for_training`), all
but the last chunk of the last micro-batch inside `no_sync()`, so DDP all-reduces the
accumulated gradients once per optimizer step, overlapped with the last chunk's backward.

A task supports this when it has `split_batch(batch, size) -> (context, chunks)`,
`embed(chunk) -> tuple of tensors`, `loss_from_embeddings(embeddings, context) -> (loss, info)`
and `loss_parameters() -> list of parameters` (see `mixlingual.training.tasks.text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from mixlingual.training.setup import gradient_sync

CACHE_METHODS = ("split_batch", "embed", "loss_from_embeddings", "loss_parameters")


def supports_cache(task) -> bool:
    """True when `task` offers the pieces `cached_forward_backward` needs."""
    return all(callable(getattr(task, name, None)) for name in CACHE_METHODS)


@dataclass
class RngState:
    """The torch CPU generator state and, on a CUDA device, that device's generator state:
    what dropout draws from (as torch.utils.checkpoint records before a recomputation)."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None = None
    device: torch.device | None = None

    @classmethod
    def capture(cls, device: torch.device) -> "RngState":
        device = torch.device(device)
        if device.type == "cuda":
            return cls(torch.get_rng_state(), torch.cuda.get_rng_state(device), device)
        return cls(torch.get_rng_state())

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def cached_forward_backward(task, batch, mini_batch: int, *, engine, accum: int = 1, sync: bool = True,
                            device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, dict]:
    """Accumulate into `.grad` the gradient of `task`'s loss on `batch` divided by `accum`, in
    chunks of `mini_batch` pairs; return (loss, info) like `task.loss(batch)`.

    `engine` runs a function inside the (DDP) forward; `sync=False` keeps every chunk inside
    `no_sync()` (an earlier micro-batch of gradient accumulation).
    """
    context, chunks = task.split_batch(batch, mini_batch)
    cached, states = _embed_without_graph(task, chunks, device)
    after = RngState.capture(device)
    loss, info, chunk_grads, param_grads = _embedding_gradients(task, cached, context, accum)
    for index, (chunk, grads) in enumerate(zip(chunks, chunk_grads)):
        last = index == len(chunks) - 1
        states[index].restore()  # the same dropout masks as in the cached forward
        with gradient_sync(engine, sync and last):
            surrogate = engine(partial(_surrogate, task, chunk, grads, param_grads if last else ()))
            surrogate.backward()
    after.restore()
    return loss, info


def _embed_without_graph(task, chunks: list, device) -> tuple[list[tuple[torch.Tensor, ...]], list[RngState]]:
    """Step 1: every chunk's embeddings without a graph, and the RNG state before each chunk."""
    cached, states = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RngState.capture(device))
            cached.append(tuple(t.detach() for t in task.embed(chunk)))
    return cached, states


def _embedding_gradients(task, cached: list[tuple[torch.Tensor, ...]], context, accum: int):
    """Step 2: the loss on the cached embeddings and its gradient, split back into chunks.

    Returns (loss, info, per-chunk gradient tuples, gradients of `task.loss_parameters()`).
    `torch.autograd.grad` leaves `.grad` untouched: every parameter gradient then reaches
    `.grad` through a re-forward, where DDP sees it.
    """
    parts = [torch.cat([chunk[i] for chunk in cached]).requires_grad_() for i in range(len(cached[0]))]
    loss, info = task.loss_from_embeddings(tuple(parts), context)
    params = task.loss_parameters()
    grads = torch.autograd.grad(loss / accum, parts + params, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(parts + params, grads)]
    sizes = [[chunk[i].shape[0] for chunk in cached] for i in range(len(parts))]
    per_part = [grad.split(size) for grad, size in zip(grads[:len(parts)], sizes)]
    chunk_grads = list(zip(*per_part))
    return loss.detach(), info, chunk_grads, list(zip(params, grads[len(parts):]))


def _surrogate(task, chunk, grads: tuple[torch.Tensor, ...], param_grads) -> torch.Tensor:
    """Step 3, inside the engine's forward: a scalar whose gradient with respect to the chunk's
    embeddings (and to the loss parameters in `param_grads`) is the cached gradient."""
    embeddings = task.embed(chunk)
    total = sum((e * g).sum() for e, g in zip(embeddings, grads))
    for param, grad in param_grads:
        total = total + (param * grad).sum()
    return total
