"""Padding-free forward pass for BERT-family encoders (BERT, XLM-R, multilingual-E5, LaBSE, mBERT).

A padded batch spends every linear layer - nearly all of an encoder's FLOPs - on pad tokens too:
in a random contrastive batch of short texts that is 30-40% of the tokens (bench/train.py).
This forward keeps the batch packed as one (tokens, hidden) matrix through the embeddings and
every dense / feed-forward / LayerNorm step, and pads it only around scaled-dot-product
attention, which needs the per-text structure: in buckets of texts of similar length, each padded
to its own longest (attention and its dropout mask cost length squared). It calls the model's own submodules, so the weights,
activation, dropout, autocast and gradients are exactly the stock ones; the stock forward is the
reference in tests (same outputs to float tolerance in eval mode). Row counts, bucket lengths and
bucket sizes are rounded to a few shape classes (`size_class`, padding that nothing reads), so
that oneDNN's per-shape matmul primitives are reused instead of piling up.

Supported: absolute position embeddings, no cross-attention, the BertLayer structure (query /
key / value, attention.output, intermediate, output) - `supports_unpadded(model)` says whether a
model qualifies; the encoder falls back to the stock forward otherwise.

One module on purpose: it is one forward pass, from packing through bucketed attention and
dropout to pooling; its pieces only make sense together, and the tests compare the whole pass
with the stock forward.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


def supports_unpadded(model) -> bool:
    """True for encoder-only BERT / XLM-R style models with absolute positions."""
    config = getattr(model, "config", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    embeddings = getattr(model, "embeddings", None)
    if config is None or layers is None or embeddings is None:
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return False
    needed = ("word_embeddings", "position_embeddings", "LayerNorm", "dropout")
    if not all(hasattr(embeddings, name) for name in needed):
        return False
    layer = layers[0]
    try:
        self_attention = layer.attention.self
        parts = (self_attention.query, self_attention.key, self_attention.value, layer.attention.output.dense,
                 layer.intermediate.dense, layer.output.dense)
    except AttributeError:
        return False
    return all(isinstance(p, torch.nn.Linear) for p in parts)


def _position_offset(embeddings) -> int:
    # XLM-R numbers positions from padding_idx + 1 (its pad id is 1, so from 2); BERT from 0.
    padding_idx = getattr(embeddings, "padding_idx", None)
    return padding_idx + 1 if padding_idx is not None else 0


class AttentionBucket(NamedTuple):
    start: int                          # first packed token of the bucket
    tokens: int                         # real tokens in it
    texts: int
    longest: int                        # padded length of the bucket
    flat_index: torch.Tensor | None     # real token -> slot in (texts * longest); None: no padding
    mask: torch.Tensor | None           # (texts, 1, 1, longest) key mask; None: no padding


BUCKET_OVERHEAD = 64 ** 2   # fixed cost of one more attention bucket, in padded token^2 (see plan_buckets)

# Shape classes. oneDNN (torch's bf16 matmuls on CPU) builds and caches one primitive per matmul
# shape - up to 1,024, keyed by every dimension - and a packed batch has its own token count and
# bucket shapes: a GradCache step of 8 chunks built ~250 new primitives (~0.6 MB each) and the
# cache's long-lived blocks among freed activations kept 1 GB+ of heap resident (docs/training.md,
# "Cached large batches"). So the packed rows are padded up to one of a few sizes per power of
# two, bucket lengths too, and buckets hold a power of two of texts: a run reuses a bounded set of
# shapes. Padding rows are computed but never read, so outputs and gradients are unchanged.
TOKEN_CLASSES = 16    # packed row counts: 16 sizes per power of two (<= 6.25% extra rows, ~2.5% on MLQA)
LENGTH_CLASSES = 8    # bucket lengths: 8 per power of two, at least a multiple of 8


def size_class(n: int, per_octave: int, floor: int = 8) -> int:
    """`n` rounded up to a multiple of max(`floor`, 2^k / `per_octave`) for 2^k <= n < 2^(k+1):
    at most `per_octave` sizes between consecutive powers of two (`per_octave` a power of two)."""
    step = max(floor, (1 << max(n.bit_length() - 1, 0)) // per_octave)
    return -(-n // step) * step


def bucket_sizes(most: int) -> list[int]:
    """Text counts a bucket may hold: the powers of two below `most`, and `most`."""
    return sorted({1 << k for k in range(most.bit_length()) if 1 << k < most} | {most})


def plan_buckets(lengths: list[int], most: int, overhead: float = BUCKET_OVERHEAD) -> list[tuple[int, int]]:
    """(first, end) of attention buckets over ascending `lengths`: of a `bucket_sizes(most)` count
    of texts each, minimizing the sum of texts x padded longest^2 (attention and its dropout mask,
    padding included; longest rounded to its `size_class`) plus `overhead` per bucket (its dozen
    extra small ops, forward and backward), by dynamic programming. Fixed buckets of 8 padded MLQA
    passages at 256 tokens to their longest: buckets of 4 made the step 12% cheaper, while at 128
    tokens 8 stayed best (2 was 5% slower); the plan cuts where lengths jump and keeps short texts
    together.
    """
    count, sizes = len(lengths), bucket_sizes(most)
    best = [0.0] + [math.inf] * count     # best[j]: cheapest plan of the first j texts
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        longest = size_class(lengths[end - 1], LENGTH_CLASSES)
        for size in sizes:
            if size > end:
                break
            cost = best[end - size] + size * longest ** 2 + overhead
            if cost < best[end]:
                best[end], cut[end] = cost, end - size
    bounds, end = [], count
    while end > 0:
        bounds.append((cut[end], end))
        end = cut[end]
    return bounds[::-1]


class PackedBatch:
    """A batch of token sequences packed shortest first, and its attention buckets.

    Packed order is by length, so each attention bucket - consecutive texts of similar length, cut
    where `plan_buckets` finds it cheapest - is a contiguous slice of the packed tokens, padded only
    to its own longest text rounded to its `size_class` (no padding when every text has that
    length). Attention costs length squared, and in training its dropout mask is drawn over every
    padded slot, so small buckets of like lengths save most of it. The `tokens` real rows are
    followed by `rows - tokens` padding rows (token id 0 at position 0; `rows` is the token count's
    `size_class`): they pass through the row-wise layers, no bucket attends to or from them, and
    nothing reads their outputs, so their gradient is exactly zero. `order[i]` is the input index
    of packed text i.
    """

    def __init__(self, sequences: list[list[int]], device: torch.device, bucket_size: int = 16):
        self.order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        lengths = [len(sequences[i]) for i in self.order]
        self.batch = len(sequences)
        self.tokens = sum(lengths)
        self.rows = size_class(self.tokens, TOKEN_CLASSES)
        ids = [t for i in self.order for t in sequences[i]] + [0] * (self.rows - self.tokens)
        self.input_ids = torch.tensor(ids, dtype=torch.long, device=device)
        positions = [torch.arange(n) for n in lengths] + [torch.zeros(self.rows - self.tokens, dtype=torch.long)]
        self.positions = torch.cat(positions).to(device)
        counts = torch.tensor(lengths, dtype=torch.long)
        self.lengths = counts.to(device)
        self.owner = torch.repeat_interleave(torch.arange(self.batch), counts).to(device)
        self.starts = (torch.cumsum(counts, 0) - counts).to(device)    # first token of each text
        self.buckets: list[AttentionBucket] = []
        token = 0
        for first, end in plan_buckets(lengths, bucket_size):
            chunk = lengths[first:end]
            longest, tokens = size_class(chunk[-1], LENGTH_CLASSES), sum(chunk)
            if chunk[0] == longest:      # every text fills the padded length: a plain view, no mask
                self.buckets.append(AttentionBucket(token, tokens, len(chunk), longest, None, None))
            else:
                chunk_t = torch.tensor(chunk)
                rows = torch.repeat_interleave(torch.arange(len(chunk)), chunk_t)
                cols = torch.cat([torch.arange(n) for n in chunk])
                mask = torch.arange(longest).unsqueeze(0) < chunk_t.unsqueeze(1)
                self.buckets.append(AttentionBucket(token, tokens, len(chunk), longest,
                                                    (rows * longest + cols).to(device), mask.to(device)[:, None, None, :]))
            token += tokens

    def restore_order(self, per_text: torch.Tensor) -> torch.Tensor:
        """Rows in packed (length) order -> rows in input order."""
        inverse = torch.empty(self.batch, dtype=torch.long)
        inverse[torch.tensor(self.order)] = torch.arange(self.batch)
        return per_text.index_select(0, inverse.to(per_text.device))


_RANDOM_LEVELS = 1 << 16   # dropout draws: 16-bit uniforms, four per 64-bit random word


def keep_mask(shape, p: float, dtype: torch.dtype, device=None) -> tuple[torch.Tensor, float]:
    """(1 where kept, 0 where dropped, in `dtype`; scale of the kept values): inverted dropout, rate ~p.

    torch's `bernoulli_` (what nn.Dropout and SDPA's dropout draw with on CPU) costs one
    generator call and a float compare per element: in training at 256 tokens it was the largest
    op of the step (21% of its CPU time). Here one 64-bit draw of the default generator gives four
    16-bit uniforms, so p is rounded to a multiple of 1/65536 (0.1 -> 0.099991) and the scale is
    1 / (1 - that p): unbiased, and `torch.manual_seed` reproduces it. The mask is a 0/1 tensor of
    the activations' dtype because multiplying by it is vectorized where bool ops (masked_fill,
    where) are not: 1.8 ms against 11 ms for 8 x 12 x 256 x 256 bf16 values.
    """
    count = math.prod(shape)
    dropped = round(p * _RANDOM_LEVELS)
    if dropped >= _RANDOM_LEVELS:
        return torch.zeros(shape, dtype=dtype, device=device), 0.0
    # the full int64 range: plain random_() leaves the top bit 0, so every 4th 16-bit lane >= 0
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, None)
    keep = words.view(torch.int16)[:count].view(shape) >= dropped - _RANDOM_LEVELS // 2
    scale = _RANDOM_LEVELS / (_RANDOM_LEVELS - dropped)
    return keep.view(torch.uint8).to(dtype), scale   # bool -> uint8 is a free view; uint8 -> dtype is fast


def dropout(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` for the model's nn.Dropout modules, with the mask drawn by `keep_mask`."""
    p = getattr(module, "p", None)
    if not (isinstance(module, torch.nn.Dropout) and module.training and p) or x.device.type != "cpu":
        return module(x)   # eval, other modules, GPUs (whose bernoulli_ is fast)
    keep, scale = keep_mask(x.shape, p, x.dtype, x.device)
    return x * keep * scale


def bucket_attention(query, key, value, mask, dropout_p: float, scale: float | None) -> torch.Tensor:
    """Attention of one padded bucket, (texts, heads, longest, dim) in and out.

    Without dropout (eval, encoding), and on GPUs, this is SDPA, whose fused kernels are fast.
    With dropout on a CPU, torch (2.x) falls back to its "math" path, which upcasts bf16 to fp32,
    draws the mask with `bernoulli_` and guards fully masked rows (`isneginf`, `all`, `where`)
    that a bucket never has:
    2.5x the CPU time of the explicit version below (fwd + bwd, 8 x 256 tokens, bf16). It keeps
    autocast's dtype (bf16 scores as the matmul gives them), scales the small query instead of
    the scores, adds the key mask inside the matmul (baddbmm: no pass over the scores, no
    backward), zeroes dropped probabilities with a `keep_mask` and applies the 1 / (1 - p) scale
    to the small output.
    """
    if dropout_p == 0.0 or query.device.type != "cpu":   # GPUs: fused kernels with dropout
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    texts, heads, length, dim = query.shape
    query = query * (scale if scale is not None else dim ** -0.5)
    if mask is None:
        scores = torch.matmul(query, key.transpose(-1, -2))
    else:
        bias = torch.zeros(mask.shape, dtype=query.dtype, device=query.device).masked_fill_(~mask, float("-inf"))
        bias = bias.expand(texts, heads, 1, length).reshape(texts * heads, 1, length)
        scores = torch.baddbmm(bias, query.reshape(texts * heads, length, dim),
                               key.reshape(texts * heads, length, dim).transpose(1, 2)).view(texts, heads, length, length)
    probs = scores.softmax(-1)
    keep, keep_scale = keep_mask(probs.shape, dropout_p, probs.dtype, probs.device)
    return torch.matmul(probs * keep, value) * keep_scale


def _fused_qkv(attn, hidden: torch.Tensor) -> torch.Tensor:
    """(tokens, 3, heads, dim): query, key and value from one matmul with the three projections'
    weights concatenated - one cast of the input under autocast instead of three, one larger GEMM,
    and in the backward one input-gradient GEMM instead of three plus two additions. The weights
    stay the model's own parameters (the concatenation is rebuilt each call, so gradients reach
    them as usual)."""
    projections = (attn.query, attn.key, attn.value)
    weight = torch.cat([proj.weight for proj in projections])
    biases = [proj.bias for proj in projections]
    bias = torch.cat(biases) if all(b is not None for b in biases) else None
    if bias is None and any(b is not None for b in biases):
        bias = torch.cat([b if b is not None else proj.weight.new_zeros(proj.out_features)
                          for b, proj in zip(biases, projections)])
    return F.linear(hidden, weight, bias).view(hidden.shape[0], 3, attn.num_attention_heads,
                                               attn.attention_head_size)


def _attention(layer, hidden: torch.Tensor, packed: PackedBatch) -> torch.Tensor:
    attn = layer.attention.self
    heads, head_dim = attn.num_attention_heads, attn.attention_head_size
    dropout_p = attn.dropout.p if attn.training else 0.0
    scale = getattr(attn, "scaling", None)
    qkv = _fused_qkv(attn, hidden)
    parts = []
    # split once (its backward is one concatenation) rather than slicing per bucket (one full-size
    # gradient per slice, added up); pad query, key and value of a bucket in one index_copy
    sizes = [b.tokens for b in packed.buckets] + [packed.rows - packed.tokens]   # padding rows last
    for b, x in zip(packed.buckets, qkv.split(sizes)):
        if b.flat_index is not None:
            x = x.new_zeros((b.texts * b.longest, 3, heads, head_dim)).index_copy(0, b.flat_index, x)
        query, key, value = x.view(b.texts, b.longest, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        context = bucket_attention(query, key, value, b.mask, dropout_p, scale)
        context = context.transpose(1, 2).reshape(b.texts * b.longest, heads * head_dim)
        parts.append(context if b.flat_index is None else context.index_select(0, b.flat_index))
    if packed.rows > packed.tokens:   # padding rows attend to nothing: a zero context
        parts.append(parts[0].new_zeros((packed.rows - packed.tokens, heads * head_dim)))
    context = torch.cat(parts) if len(parts) > 1 else parts[0]
    out = layer.attention.output
    return out.LayerNorm(dropout(out.dropout, out.dense(context)) + hidden)


def unpadded_hidden_states(model, sequences: list[list[int]], *, bucket_size: int = 16,
                           token_type_id: int = 0) -> tuple[torch.Tensor, PackedBatch]:
    """Last hidden states of every real token, packed (tokens, hidden) in `PackedBatch` order
    (the padding rows dropped)."""
    device = model.embeddings.word_embeddings.weight.device
    packed = PackedBatch(sequences, device, bucket_size)
    emb = model.embeddings
    hidden = emb.word_embeddings(packed.input_ids)
    hidden = hidden + emb.position_embeddings(packed.positions + _position_offset(emb))
    if getattr(emb, "token_type_embeddings", None) is not None:
        hidden = hidden + emb.token_type_embeddings.weight[token_type_id]
    hidden = dropout(emb.dropout, emb.LayerNorm(hidden))
    for layer in model.encoder.layer:
        attended = _attention(layer, hidden, packed)
        inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(attended))
        hidden = layer.output.LayerNorm(dropout(layer.output.dropout, layer.output.dense(inner)) + attended)
    return hidden[:packed.tokens], packed


def unpadded_pool(model, sequences: list[list[int]], pooling: str = "mean", *, bucket_size: int = 16) -> torch.Tensor:
    """(batch, hidden) mean- or CLS-pooled embeddings in input order, as padded forward + pooling."""
    hidden, packed = unpadded_hidden_states(model, sequences, bucket_size=bucket_size)
    if pooling == "cls":
        pooled = hidden.index_select(0, packed.starts)
    else:
        summed = hidden.new_zeros((packed.batch, hidden.shape[1])).index_add(0, packed.owner, hidden)
        pooled = summed / packed.lengths.unsqueeze(1).to(summed.dtype)
    return packed.restore_order(pooled)
