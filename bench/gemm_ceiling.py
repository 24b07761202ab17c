"""The matrix-unit ceiling of a training step: its GEMMs alone, at their real shapes, against a big matmul.

    python bench/gemm_ceiling.py [--texts 16] [--query-length 20] [--passage-length 103]
                                 [--threads 1] [--out bench/results/gemm-ceiling.json]

bench/train.py reports a step's useful GFLOP/s (real tokens) as a share of a bf16 2048^3 matmul
measured in the same run. This script asks how high that share can go on this machine with the
GEMM library torch uses (oneDNN on CPU), whatever the rest of the step costs: it times, by CPU
time and in bf16, every matrix product one optimizer step of an encoder like e5-small must do -
per layer the linear layers' forward (`addmm`), input-gradient and weight-gradient GEMMs (the
operand layouts autograd uses: transposed views), and per attention bucket the four score /
value products and their gradients - on one packed batch of `--texts` queries and as many
passages (texts x (query + passage length) rows), and divides the step's useful FLOPs (3 x
bench/encode.py's forward count, with the GEMMs' weights as the params) by their summed time.
The default lengths give the useful FLOPs of bench/train.py's MLQA step at 128 tokens (264
GFLOP for 16 pairs, so ~1,970 tokens) with 20-token queries; at 256 tokens (350 GFLOP) the
passages are 141. A step that did nothing but these GEMMs would reach that share; any other
work (casts, dropout, softmax, GELU, LayerNorm, residual adds, the optimizer) only lowers it.
It also prints the step time the issue's 50% goal allows and how much of it the GEMMs alone use,
and times a floor for the rest: the element-wise work a BERT layer's training step cannot skip
(softmax, attention and hidden dropout, GELU, two LayerNorms, residual adds, forward and backward,
and the fused AdamW update), each as one torch kernel at the step's shapes, with no casts, copies
or anything else the real step also does.

Best of `--repeats` per product, all in one process after a warm-up (oneDNN primitives built),
alternating with the reference matmul's timing to spread a shared machine's drift over both.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, cpu_flags, encoder_forward_flops, matmul_gflops  # noqa: E402

from mixlingual.io import write_atomic  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=16, help="queries and passages each, in attention buckets of 16")
    p.add_argument("--query-length", type=int, default=20)
    p.add_argument("--passage-length", type=int, default=103)
    p.add_argument("--hidden", type=int, default=384, help="e5-small: 384 wide, 1,536 feed-forward, 12 layers")
    p.add_argument("--intermediate", type=int, default=1536)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "gemm-ceiling.json"))
    return p.parse_args(argv)


def linear_products(tokens: int, d_in: int, d_out: int) -> dict:
    """The three GEMMs of one linear layer in training, as autograd calls them (bf16)."""
    x = torch.randn(tokens, d_in).bfloat16()
    weight = torch.randn(d_out, d_in).bfloat16()
    bias = torch.randn(d_out).bfloat16()
    grad_out = torch.randn(tokens, d_out).bfloat16()
    flops = 2 * tokens * d_in * d_out
    return {
        "forward": (lambda: torch.addmm(bias, x, weight.t()), flops),
        "input grad": (lambda: grad_out.mm(weight), flops),
        "weight grad": (lambda: grad_out.t().mm(x), flops),
    }


def attention_products(texts: int, length: int, heads: int, head_dim: int) -> dict:
    """Scores, weighted values and their four gradient products for one bucket of `texts` texts."""
    q, k, v, grad_ctx = (torch.randn(texts * heads, length, head_dim).bfloat16() for _ in range(4))
    probs = torch.randn(texts * heads, length, length).bfloat16()
    flops = 2 * texts * heads * length * length * head_dim
    return {
        "scores": (lambda: torch.bmm(q, k.transpose(1, 2)), flops),
        "values": (lambda: torch.bmm(probs, v), flops),
        "grad probs": (lambda: torch.bmm(grad_ctx, v.transpose(1, 2)), flops),
        "grad values": (lambda: torch.bmm(probs.transpose(1, 2), grad_ctx), flops),
        "grad queries": (lambda: torch.bmm(probs, k), flops),
        "grad keys": (lambda: torch.bmm(probs.transpose(1, 2), q), flops),
    }


def packed_rows(args) -> int:
    """Rows of the packed batch: every query and passage token."""
    return args.texts * (args.query_length + args.passage_length)


def step_products(args) -> list[dict]:
    """Every product of one step with its count per step (layers x buckets)."""
    h, ff = args.hidden, args.intermediate
    rows = []
    for name, (d_in, d_out) in {"qkv (fused)": (h, 3 * h), "attention out": (h, h),
                                "feed-forward in": (h, ff), "feed-forward out": (ff, h)}.items():
        for kind, (run, flops) in linear_products(packed_rows(args), d_in, d_out).items():
            rows.append({"product": f"{name} {kind}", "run": run, "flops": flops, "count": args.layers})
    for side, length in (("query", args.query_length), ("passage", args.passage_length)):
        for kind, (run, flops) in attention_products(args.texts, length, args.heads, h // args.heads).items():
            rows.append({"product": f"{side} attention {kind}", "run": run, "flops": flops, "count": args.layers})
    return rows


def elementwise_products(args) -> list[dict]:
    """The element-wise work no training step of a BERT layer can skip, each as torch's own kernel
    at the step's shapes (no casts, no copies, nothing fused): the floor for everything that is
    not a GEMM, unless one writes fused kernels of one's own."""
    from mixlingual.models.unpadded import keep_mask

    h, ff, t = args.hidden, args.intermediate, packed_rows(args)
    rows = []

    def add(name, run, count):
        rows.append({"product": name, "run": run, "flops": 0, "count": count})

    def dropout_forward_backward(x):   # draw the mask, apply it to the values and to their gradient
        keep, _ = keep_mask(x.shape, 0.1, x.dtype)
        return x * keep, x * keep

    for side, length in (("query", args.query_length), ("passage", args.passage_length)):
        scores = torch.randn(args.texts * args.heads, length, length).bfloat16()
        probs = scores.softmax(-1)
        grad = torch.randn_like(probs)
        add(f"{side} softmax forward + backward",
            lambda p=probs, g=grad, s=scores: (s.softmax(-1), torch._softmax_backward_data(g, p, -1, torch.bfloat16)),
            args.layers)
        add(f"{side} attention dropout (draw, apply fwd + bwd)",
            lambda p=probs: dropout_forward_backward(p), args.layers)
    inner = torch.randn(t, ff).bfloat16()
    add("GELU forward + backward", lambda: (F.gelu(inner), torch.ops.aten.gelu_backward(inner, inner)), args.layers)
    hidden = torch.randn(t, h)
    norm = torch.nn.LayerNorm(h)
    hidden_grad = torch.randn(t, h)

    def layer_norm():
        x = hidden.detach().requires_grad_()
        norm(x).backward(hidden_grad)
    add("LayerNorm forward + backward (fp32)", layer_norm, 2 * args.layers)
    small = torch.randn(t, h).bfloat16()
    add("hidden dropout (draw, apply fwd + bwd)", lambda: dropout_forward_backward(small), 2 * args.layers)
    add("residual add forward + backward", lambda: (hidden + hidden, hidden_grad + hidden_grad), 2 * args.layers)
    params = [torch.nn.Parameter(torch.randn(n)) for n in
              [4 * h * h + 2 * h * ff + 9 * h + ff] * args.layers]   # weights + biases + LayerNorms
    for param in params:
        param.grad = torch.randn_like(param)
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=True)
    add("AdamW (fused) over the layers' parameters", optimizer.step, 1)
    return rows


def useful_flops(args) -> float:
    """3 x the forward's useful FLOPs (forward + backward), the GEMMs' weights as the params."""
    params = args.layers * (4 * args.hidden ** 2 + 2 * args.hidden * args.intermediate)
    lengths = [args.query_length] * args.texts + [args.passage_length] * args.texts
    return 3 * encoder_forward_flops(params, args.hidden, args.layers, lengths)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    clock = time.process_time
    rows = step_products(args)
    floor = elementwise_products(args)
    for row in rows + floor:                            # warm-up: build every oneDNN primitive once
        row["run"]()
    reference = [matmul_gflops(torch.bfloat16, clock=clock)]
    for row in rows + floor:
        row["seconds"] = best_time(row["run"], args.repeats, clock)
    reference.append(matmul_gflops(torch.bfloat16, clock=clock))
    gemm_seconds = sum(row["seconds"] * row["count"] for row in rows)
    floor_seconds = sum(row["seconds"] * row["count"] for row in floor)
    flops = useful_flops(args)
    matmul = sum(reference) / len(reference)
    ceiling = flops / gemm_seconds / 1e9
    goal_seconds = flops / (0.5 * matmul * 1e9)

    print(f"CPU flags: {cpu_flags()}; {args.threads} thread(s); bf16 matmul 2048^3: "
          f"{reference[0]:.0f} / {reference[1]:.0f} GFLOP/CPU-s (before / after)")
    print(f"\n{'product':<36} {'shape GFLOP':>11} {'ms':>8} {'GFLOP/s':>8} {'share':>6}")
    for row in rows:
        rate = row["flops"] / row["seconds"] / 1e9
        print(f"{row['product']:<36} {row['flops'] / 1e9:>11.3f} {row['seconds'] * 1e3:>8.2f} {rate:>8.0f} "
              f"{rate / matmul:>6.0%}")
    print(f"\nuseful GFLOP per step {flops / 1e9:.1f}; the step's GEMMs alone {gemm_seconds:.3f} CPU-s -> "
          f"{ceiling:.0f} GFLOP/s = {ceiling / matmul:.0%} of the matmul rate (the ceiling)")
    print(f"50% of the matmul rate allows {goal_seconds:.3f} CPU-s per step; the GEMMs alone use "
          f"{gemm_seconds / goal_seconds:.0%} of it, leaving {max(goal_seconds - gemm_seconds, 0):.3f} CPU-s "
          f"for everything else")
    print(f"\n{'element-wise floor (per call)':<50} {'ms':>8} {'calls':>6} {'ms/step':>8}")
    for row in floor:
        print(f"{row['product']:<50} {row['seconds'] * 1e3:>8.2f} {row['count']:>6} "
              f"{row['seconds'] * row['count'] * 1e3:>8.1f}")
    best = flops / (gemm_seconds + floor_seconds) / 1e9
    print(f"GEMMs + this floor: {gemm_seconds + floor_seconds:.3f} CPU-s per step -> {best:.0f} GFLOP/s = "
          f"{best / matmul:.0%} of the matmul rate, {(gemm_seconds + floor_seconds) / goal_seconds:.0%} of the "
          f"50% goal's budget")
    result = {
        "args": vars(args), "cpu_flags": cpu_flags(), "machine": platform.machine(),
        "matmul_bf16_gflops_per_cpu_s": reference, "useful_gflop_per_step": flops / 1e9,
        "gemm_cpu_seconds_per_step": gemm_seconds, "ceiling_gflops": ceiling, "ceiling_share": ceiling / matmul,
        "goal_50_cpu_seconds_per_step": goal_seconds, "gemm_share_of_goal_budget": gemm_seconds / goal_seconds,
        "elementwise_floor_cpu_seconds_per_step": floor_seconds,
        "gemm_plus_floor_share": best / matmul,
        "products": [{key: value for key, value in row.items() if key != "run"} for row in rows],
        "elementwise_floor": [{key: value for key, value in row.items() if key not in ("run", "flops")}
                              for row in floor],
    }
    write_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
