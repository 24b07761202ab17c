"""Profile of one training step (forward, backward, AdamW) of `mixlingual train`, by op.

Same model setup as bench/train.py (the backbone, frozen word embeddings, bf16 autocast, the
packed forward), on real batches of the chosen data; torch.profiler over a few steps after a
warm-up, 1 thread. Prints the top ops by self CPU time and writes them as JSON, so the numbers
quoted in docs/training.md can be reproduced.

    python bench/profile_step.py [--data mlqa] [--max-length 256] [--batch-size 16] [--steps 3] [--set model.unpad=false]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED  # noqa: E402  (where the shared data lives)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="embedded:multilingual-e5-small")
    p.add_argument("--data", choices=("demo", "mlqa"), default="mlqa")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=3, help="profiled steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def build(args):
    from mixlingual.training.config import config_from_dict
    from mixlingual.training.tasks import make_task
    from mixlingual.training.setup import Distributed, build_optimizer, build_sampler

    data = {"name": "demo"} if args.data == "demo" else {"name": "mlqa", "path": str(SHARED / "mlqa")}
    settings = {"model": {"name": args.model, "max_length_query": args.max_length,
                          "max_length_passage": args.max_length, "freeze_word_embeddings": True},
                "data": {"train": data}, "sampling": {"kind": "hybrid", "alpha": 0.5},
                "train": {"batch_size": args.batch_size, "max_steps": 100, "precision": "bf16", "threads": 1},
                "eval": {"at_start": False, "at_end": False}}
    config = config_from_dict(settings, args.set)
    task = make_task(config)
    task.load_data()
    sampler = build_sampler(config, task.items, Distributed())
    torch.manual_seed(0)
    module = task.build_model(torch.device("cpu"))
    return task, sampler, module, build_optimizer(module, config)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    task, sampler, module, optimizer = build(args)
    batches = iter(sampler)
    trainable = [p for p in module.parameters() if p.requires_grad]

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = task.loss(next(batches))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    cpu0 = time.process_time()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    cpu = (time.process_time() - cpu0) / args.steps
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    top = [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls_per_step": e.count / args.steps,
            "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / args.steps} for e in events[:args.top]]
    print(f"{args.data}, max length {args.max_length}, batch {args.batch_size}, bf16, 1 thread, "
          f"{args.set or 'defaults'}: {cpu:.3f} CPU-s/step (profiled)")
    print(f"{'op':<48}{'share':>7}{'ms/step':>10}{'calls':>8}")
    for row in top:
        print(f"{row['op'][:47]:<48}{100 * row['self_cpu_share']:>6.1f}%{row['self_cpu_ms_per_step']:>10.1f}"
              f"{row['calls_per_step']:>8.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "cpu_seconds_per_step": cpu, "top": top}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
