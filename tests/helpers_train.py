"""Shared helpers for training tests: a tiny parallel JSONL data set and a tiny-model config.

    from helpers_train import tiny_run_overrides
    overrides = tiny_run_overrides(tmp_path, steps=6)      # --set strings for load_config / the CLI
"""

from __future__ import annotations

import random
from pathlib import Path

from helpers_models import TINY_WORDS, make_tiny_model_dir

from mixlingual.data.jsonl import write_parallel
from mixlingual.data.records import ParallelItem

LANGS = ("de", "en", "es")


def write_tiny_parallel(path: Path, n_items: int = 48, seed: int = 0) -> Path:
    """Items in de/en/es whose texts are random words the tiny tokenizer knows; 3 negatives (or none)."""
    rnd = random.Random(seed)

    def text(n):
        return " ".join(rnd.choice(TINY_WORDS) for _ in range(n))

    items = []
    for i in range(n_items):
        langs = LANGS if i % 4 else LANGS[:2]  # some items lack Spanish
        items.append(ParallelItem(id=f"i{i}", queries={x: text(5) for x in langs},
                                  positives={x: text(12) for x in langs},
                                  # every 5th item has no negatives: ranks hold unequal numbers
                                  negatives={} if i % 5 == 0 else {x: [text(12) for _ in range(3)] for x in langs}))
    write_parallel(items, path)
    return path


def tiny_run_overrides(tmp_path: Path, *, steps: int = 6, out: str = "run", batch_size: int = 4) -> list[str]:
    """`--set` overrides for a few fp32 CPU steps of a 2-layer tiny BERT on tiny data."""
    tmp_path = Path(tmp_path)
    model = tmp_path / "tiny-model"
    if not model.exists():
        make_tiny_model_dir(model)
    data = tmp_path / "train.jsonl"
    if not data.exists():
        write_tiny_parallel(data)
    return [f"model.name={model}", "model.max_length_query=16", "model.max_length_passage=24",
            "data.train.name=jsonl", f"data.train.path={data}", f"train.batch_size={batch_size}",
            f"train.max_steps={steps}", "train.precision=fp32", "train.log_every=1", "train.checkpoint_every=2",
            "train.progress=false", "optim.lr=1e-3", "optim.warmup_steps=1", "eval.at_start=false",
            "output.tensorboard=false", f"output.dir={tmp_path / out}"]
