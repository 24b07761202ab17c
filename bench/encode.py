"""Encoding throughput: our BiEncoder against sentence-transformers on the same model and texts.

    .venv/bin/python bench/encode.py [--texts 512] [--batch-size 32] [--threads 1]

Measured in one run, on the same texts (real XQuAD-R sentences from ../shared/data when present,
else generated), the same batch size and max length:

* passages per CPU-second (1 thread) of ``BiEncoder.encode_passages`` in fp32 and bf16 (autocast), and in
  bf16 with the padded forward (``encode_packed = False``), against
  ``SentenceTransformer.encode_document`` on the folder our ``save`` wrote, in fp32 and under the
  same bf16 autocast (equal precision), as ratios;
* achieved GFLOP/s of our bf16 encode (2 x non-embedding params x real tokens + attention
  4 x L^2 x hidden per layer, padding not counted) against a plain bf16 ``torch.matmul``.

Runs alternate between the contenders and the best of ``--repeats`` counts, which damps noise
from other processes on a shared CPU. Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import REPO, SHARED, best_time, cpu_flags, forward_flops, matmul_gflops

from mixlingual.io import write_atomic


def load_texts(count: int, data_dir: Path) -> tuple[list[str], str]:
    """``count`` XQuAD-R sentences taken round-robin over languages, or generated ones."""
    folder = data_dir / "xquad-r-dev"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if files:
        per_language = []
        for path in files:
            data = json.loads(path.read_text(encoding="utf-8"))
            per_language.append([s.lstrip("\ufeff") for article in data["data"]
                                 for paragraph in article["paragraphs"]
                                 for s in paragraph["sentences"] if s.strip()])
        texts = [group[i] for i in range(max(map(len, per_language)))
                 for group in per_language if i < len(group)]
        return texts[:count], f"xquad-r-dev sentences ({len(files)} languages)"
    rng = np.random.default_rng(0)
    words = "the of river city language music history people water world north old new".split()
    texts = [" ".join(rng.choice(words, size=rng.integers(8, 40))) for _ in range(count)]
    return texts, "generated"


def encode_flops(encoder, texts: list[str]) -> float:
    """Useful FLOPs of one passage encode (real tokens only)."""
    sequences, _ = encoder._windows(texts, "passage")
    return forward_flops(encoder.model, [len(s) for s in sequences])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:multilingual-e5-small")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: a shared CPU punishes multi-threaded small ops)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "encode.json")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    from mixlingual.models.encoder import BiEncoder, EncoderConfig

    torch.set_num_threads(args.threads)
    texts, source = load_texts(args.texts, args.data)
    ours_fp32 = BiEncoder.from_pretrained(args.model, precision="fp32")
    ours_bf16 = BiEncoder(ours_fp32.model, ours_fp32.tokenizer,
                          EncoderConfig(**{**ours_fp32.config.__dict__, "precision": "bf16"}),
                          name=ours_fp32.name)
    with tempfile.TemporaryDirectory() as folder:
        ours_fp32.save(folder)
        st = SentenceTransformer(folder, device="cpu")
    bf16_autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    bs = args.batch_size
    ours_padded = BiEncoder(ours_fp32.model, ours_fp32.tokenizer, ours_bf16.config, name=ours_fp32.name)
    ours_padded.encode_packed = False   # the stock padded forward: what packing gains, same run
    contenders = {
        "ours fp32": lambda: ours_fp32.encode_passages(texts, batch_size=bs),
        "sentence-transformers fp32": lambda: st.encode_document(texts, batch_size=bs),
        "ours bf16": lambda: ours_bf16.encode_passages(texts, batch_size=bs),
        "sentence-transformers bf16": lambda: _under(bf16_autocast(), lambda: st.encode_document(
            texts, batch_size=bs)),
        "ours bf16 padded": lambda: ours_padded.encode_passages(texts, batch_size=bs),
    }
    outputs = {name: run() for name, run in contenders.items()}  # warm-up, and outputs to compare
    times = {name: float("inf") for name in contenders}
    for _ in range(args.repeats):  # alternate contenders so load spikes hit all of them
        for name, run in contenders.items():
            times[name] = min(times[name], best_time(run, 1, time.process_time))
    flops = encode_flops(ours_fp32, texts)
    results = {
        "model": args.model, "texts": len(texts), "text_source": source,
        "batch_size": bs, "threads": args.threads, "repeats": args.repeats,
        "max_length": ours_fp32.config.max_length_passage,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"load average {os.getloadavg()[0]:.1f} at the end",
        "cpu_flags": cpu_flags(),
        "passages_per_s": {name: len(texts) / t for name, t in times.items()},
        "ratio_vs_sentence_transformers": {
            "fp32": times["sentence-transformers fp32"] / times["ours fp32"],
            "bf16": times["sentence-transformers bf16"] / times["ours bf16"]},
        "packed_vs_padded_bf16": times["ours bf16 padded"] / times["ours bf16"],
        "cosine_ours_vs_st_min": {
            p: float(np.min((outputs[f"ours {p}"] * outputs[f"sentence-transformers {p}"]).sum(1)))
            for p in ("fp32", "bf16")},
        "encode_gflops": {p: flops / times[f"ours {p}"] / 1e9 for p in ("fp32", "bf16")},
        "clock": "process CPU time (1 thread: steady on a shared CPU)",
        "matmul_gflops": {"fp32": matmul_gflops(torch.float32, clock=time.process_time),
                          "bf16": matmul_gflops(torch.bfloat16, clock=time.process_time)},
    }
    results["encode_vs_matmul"] = {p: results["encode_gflops"][p] / results["matmul_gflops"][p]
                                   for p in ("fp32", "bf16")}
    print_table(results)
    write_atomic(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _under(context: contextlib.AbstractContextManager, run):
    with context:
        return run()


def print_table(results: dict) -> None:
    print(f"{results['texts']} {results['text_source']}, batch {results['batch_size']}, "
          f"{results['threads']} threads, max length {results['max_length']}; "
          f"{results['machine']}")
    print(f"CPU flags: {results['cpu_flags']}; packed / padded forward (bf16): "
          f"{results['packed_vs_padded_bf16']:.2f}x")
    print(f"{'contender':<30}{'passages/CPU-s':>15}")
    for name, rate in results["passages_per_s"].items():
        print(f"{name:<30}{rate:>15.1f}")
    for p in ("fp32", "bf16"):
        print(f"{p}: ours / sentence-transformers = "
              f"{results['ratio_vs_sentence_transformers'][p]:.2f}x  (min cosine "
              f"{results['cosine_ours_vs_st_min'][p]:.5f}); encode "
              f"{results['encode_gflops'][p]:.1f} GFLOP/s = "
              f"{100 * results['encode_vs_matmul'][p]:.0f}% of {p} matmul "
              f"({results['matmul_gflops'][p]:.1f} GFLOP/s)")


if __name__ == "__main__":
    sys.exit(main())
