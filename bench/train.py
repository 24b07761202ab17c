"""Training speed: `mixlingual train` against sentence-transformers' trainer, measured in one run.

Both sides train the same backbone (the embedded multilingual-e5-small saved in the
sentence-transformers layout, or --model), on the same (query, passage) pairs (drawn once by
the hybrid sampler; the ST side gets them with the "query: " / "passage: " prefixes), with the
same batch size, max sequence length, precision, frozen-embedding setting, AdamW settings and
InfoNCE temperature (MultipleNegativesRankingLoss scale 20 = 1 / 0.05). Each side runs in its
own subprocess (so peak memory is its own), alternating ours / ST `--repeats` times to spread
the drift of a shared CPU over both. Steps are clocked after every AdamW update on both sides
(wall and process CPU time); the figures are medians after `--warmup` steps and the ratios are
ST time / our time (> 1: we are faster). On a shared CPU the CPU-time ratio is the steady one.

    python bench/train.py [--steps 12] [--batch-size 16] [--max-length 128] [--precision bf16] [--no-unpad] [--length-buckets 2]
                          [--data demo|mlqa] [--threads 1] [--mini-batch 16] [--out bench/results/train.json]

With --mini-batch N both sides use gradient caching: our `train.mini_batch: N` (GradCache)
against sentence-transformers' CachedMultipleNegativesRankingLoss(mini_batch_size=N); the
same table, ratios and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED, cpu_flags, forward_flops, matmul_gflops


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="embedded:multilingual-e5-small")
    p.add_argument("--data", choices=("demo", "mlqa"), default="demo")
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per run (after warmup)")
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128, help="max tokens, queries and passages alike")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--train-embeddings", action="store_true", help="also train the word embeddings")
    p.add_argument("--no-unpad", dest="unpad", action="store_false",
                   help="our side: padded forward (model.unpad: false) instead of the packed one")
    p.add_argument("--length-buckets", type=int, default=1,
                   help="our side, padded forward: embed each batch in N length-sorted chunks")
    p.add_argument("--mini-batch", type=int, default=0,
                   help="GradCache rows: our side with train.mini_batch N, sentence-transformers with "
                        "CachedMultipleNegativesRankingLoss(mini_batch_size=N); 0: plain MNRL")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="alternating runs per side")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    p.add_argument("--worker", choices=("ours", "st"), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----- preparation (parent process) ------------------------------------------------------
def prepare(args, work: Path) -> dict:
    """Save the backbone in ST layout, draw the pairs, write the spec both workers read."""
    from mixlingual.training.config import config_from_dict
    from mixlingual.models.encoder import BiEncoder
    from mixlingual.training.setup import Distributed, build_sampler

    model_dir = work / "model"
    BiEncoder.from_pretrained(args.model).save(str(model_dir))
    data = {"name": "demo"} if args.data == "demo" else {"name": "mlqa", "path": str(SHARED / "mlqa")}
    total = args.steps + args.warmup
    settings = {
        "model": {"name": str(model_dir), "max_length_query": args.max_length, "max_length_passage": args.max_length,
                  "freeze_word_embeddings": not args.train_embeddings, "length_buckets": args.length_buckets,
                  "unpad": args.unpad},
        "data": {"train": data}, "sampling": {"kind": "hybrid", "alpha": 0.5},
        "optim": {"lr": 3.0e-5, "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0},
        "train": {"batch_size": args.batch_size, "max_steps": total, "precision": args.precision, "log_every": 10,
                  "checkpoint_every": 10 ** 6, "keep_last": 1, "progress": False, "threads": args.threads},
        "eval": {"at_start": False, "at_end": False}, "output": {"tensorboard": False, "dir": str(work / "ours")},
    }
    if args.mini_batch:   # needs GradCache (train.mini_batch); an older checkout names the unknown key here
        settings["train"]["mini_batch"] = args.mini_batch
    config = config_from_dict(settings)
    from mixlingual.training.tasks import make_task

    task = make_task(config)
    task.load_data()
    sampler = build_sampler(config, task.items, Distributed())
    pairs = []
    batches = iter(sampler)
    while len(pairs) < total * args.batch_size:
        try:
            batch = next(batches)
        except StopIteration:
            sampler.set_epoch(sampler.epoch + 1)
            batches = iter(sampler)
            continue
        for pair in batch.pairs:
            item = task.items[pair.item_index]
            pairs.append(("query: " + item.queries[pair.query_lang], "passage: " + item.positives[pair.passage_lang]))
    spec = {"settings": settings, "pairs": pairs, "model_dir": str(model_dir), "args": vars(args), "work": str(work)}
    (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    return spec


# ----- workers (one subprocess per run) ---------------------------------------------------
def clock_optimizer_steps() -> list[tuple[float, float, float]]:
    """Record (wall, process CPU) time and the peak RSS so far after every AdamW step, on either
    side alike.

    Both trainers use torch's (fused) AdamW, so the gaps between stamps are whole training steps
    (data, forward, backward, clipping, update, logging). CPU time is what the step cost the
    process; on a shared machine it is far steadier than wall time. The peak RSS at the last step
    leaves out what a run does after training: our loop writes a final checkpoint and model
    export there, the ST side (save_strategy "no") nothing.
    """
    import torch

    stamps: list[tuple[float, float]] = []
    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        stamps.append((time.perf_counter(), time.process_time(), peak_rss_mb()))
        return result

    torch.optim.AdamW.step = step
    return stamps


def step_times(stamps: list[tuple[float, float, float]]) -> dict:
    return {"step_seconds": [b[0] - a[0] for a, b in zip(stamps, stamps[1:])],
            "step_cpu_seconds": [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_memory_mb(stamps: list[tuple[float, float, float]]) -> dict:
    import torch

    out = {"peak_rss_mb": peak_rss_mb(), "peak_rss_training_mb": stamps[-1][2] if stamps else None}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def useful_flops_per_step(spec: dict) -> float:
    """FLOPs of a mean training step over real tokens: forward + backward (2x forward) of the
    pairs' queries and passages as tokenized at the max length, per step of `batch_size` pairs."""
    from mixlingual.models.encoder import BiEncoder

    args = spec["args"]
    encoder = BiEncoder.from_pretrained(spec["model_dir"])
    texts = [text for pair in spec["pairs"] for text in pair]   # already prefixed
    ids = encoder.tokenizer(texts, truncation=True, max_length=args["max_length"], verbose=False)["input_ids"]
    steps = len(spec["pairs"]) / args["batch_size"]
    return 3 * forward_flops(encoder.model, [len(x) for x in ids]) / steps


def worker_ours(spec: dict, run_dir: Path) -> dict:
    from mixlingual.training.config import config_from_dict
    from mixlingual.training.loop import train

    config = config_from_dict(spec["settings"], [f"output.dir={run_dir}"])
    stamps = clock_optimizer_steps()
    started = time.perf_counter()
    train(config)
    return {**step_times(stamps), "wall_seconds": time.perf_counter() - started, **peak_memory_mb(stamps)}


def worker_st(spec: dict, run_dir: Path) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss

    args = spec["args"]
    torch.set_num_threads(args["threads"])
    model = SentenceTransformer(spec["model_dir"], device="cuda" if torch.cuda.is_available() else "cpu")
    model.max_seq_length = args["max_length"]
    if not args["train_embeddings"]:
        model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    queries, passages = zip(*spec["pairs"])
    dataset = Dataset.from_dict({"anchor": list(queries), "positive": list(passages)})
    stamps = clock_optimizer_steps()
    steps = args["steps"] + args["warmup"]
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(run_dir), max_steps=steps, per_device_train_batch_size=args["batch_size"],
        learning_rate=3e-5, weight_decay=0.01, warmup_ratio=0.1, max_grad_norm=1.0,
        bf16=args["precision"] == "bf16", use_cpu=not torch.cuda.is_available(), report_to="none",
        save_strategy="no", logging_strategy="no", dataloader_drop_last=True, seed=42, disable_tqdm=True)
    loss = (CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=args["mini_batch"])
            if args.get("mini_batch") else MultipleNegativesRankingLoss(model, scale=20.0))
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset, loss=loss)
    started = time.perf_counter()
    trainer.train()
    return {**step_times(stamps), "wall_seconds": time.perf_counter() - started, **peak_memory_mb(stamps)}


def run_worker(args) -> None:
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    run_dir = Path(tempfile.mkdtemp(prefix=f"{args.worker}-", dir=spec["work"]))
    result = (worker_ours if args.worker == "ours" else worker_st)(spec, run_dir)
    print("RESULT " + json.dumps(result))


# ----- the comparison ---------------------------------------------------------------------
def launch(side: str, spec_path: Path, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, __file__, "--worker", side, "--spec", str(spec_path)],
                          env=env, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"{side} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    matmul = [matmul_gflops(torch.bfloat16, clock=time.process_time)]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        spec = prepare(args, work)
        flops = useful_flops_per_step(spec)
        runs = {"ours": [], "st": []}
        for repeat in range(args.repeats):
            for side in ("ours", "st"):
                result = launch(side, work / "spec.json", args.threads)
                for key in ("step_seconds", "step_cpu_seconds"):
                    result[f"median_{key}"] = statistics.median(result[key][args.warmup:])
                runs[side].append(result)
                print(f"run {repeat + 1} {side:<4}: median {result['median_step_seconds']:.3f} s/step wall, "
                      f"{result['median_step_cpu_seconds']:.3f} CPU-s/step over {len(result['step_seconds']) - args.warmup} "
                      f"steps, peak RSS {result['peak_rss_mb']:.0f} MB ({result['peak_rss_training_mb'] or 0:.0f} "
                      f"at the last step)", flush=True)
    matmul.append(matmul_gflops(torch.bfloat16, clock=time.process_time))
    summary = {}
    for side, results in runs.items():
        summary[side] = {key: statistics.median(r[f"median_{key}"] for r in results)
                         for key in ("step_seconds", "step_cpu_seconds")}
        summary[side]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
        summary[side]["peak_rss_training_mb"] = max(r.get("peak_rss_training_mb") or 0 for r in results)
        summary[side]["useful_gflops_per_cpu_s"] = flops / summary[side]["step_cpu_seconds"] / 1e9
    matmul_rate = max(matmul)   # before and after the runs, by CPU time; the better is the ceiling
    share = summary["ours"]["useful_gflops_per_cpu_s"] / matmul_rate
    ratio_wall = summary["st"]["step_seconds"] / summary["ours"]["step_seconds"]
    ratio_cpu = summary["st"]["step_cpu_seconds"] / summary["ours"]["step_cpu_seconds"]
    print(f"\n{'trainer':<32} {'steps/s':>8} {'s/step':>8} {'CPU-s/step':>10} {'GFLOP/CPU-s':>12} {'peak RSS MB':>12}")
    labels = {"ours": "mixlingual train" + (f" mini_batch {args.mini_batch}" if args.mini_batch else ""),
              "st": "SentenceTransformerTrainer+" + (f"CachedMNRL {args.mini_batch}" if args.mini_batch else "MNRL")}
    for side, label in labels.items():
        s = summary[side]
        print(f"{label:<32} {1 / s['step_seconds']:>8.3f} {s['step_seconds']:>8.3f} {s['step_cpu_seconds']:>10.3f} "
              f"{s['useful_gflops_per_cpu_s']:>12.1f} {s['peak_rss_mb']:>12.0f}")
    print(f"speed ratio (ours / sentence-transformers): {ratio_wall:.2f}x by wall time, {ratio_cpu:.2f}x by CPU time")
    print(f"useful work: {flops / 1e9:.1f} GFLOP/step (real tokens, fwd + bwd) at {summary['ours']['useful_gflops_per_cpu_s']:.1f} "
          f"GFLOP/CPU-s = {100 * share:.0f}% of a bf16 2048^3 matmul in this run ({matmul_rate:.1f} GFLOP/CPU-s); "
          f"CPU flags: {cpu_flags()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"args": {k: v for k, v in vars(args).items() if k not in ("worker", "spec")}, "summary": summary,
              "ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu,
              "useful_gflop_per_step": flops / 1e9, "matmul_bf16_gflops_per_cpu_s": matmul, "ours_vs_matmul": share,
              "cpu_flags": cpu_flags(), "runs": runs, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "note": "shared CPU: other jobs ran at the same time; sides alternate to spread the drift"}
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
