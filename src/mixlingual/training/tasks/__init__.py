"""Training tasks: what the one training loop (`mixlingual.training.loop`) needs from a modality.

A task is a small object with this interface (see `TextRetrievalTask` for the reference one)::

    task = TaskClass(config)                  # a validated mixlingual.training.config.Config
    task.load_data()                          # sets task.items (sampler input) and eval data
    task.items                                # Sequence of ParallelItem-like records: .queries,
                                              #   .positives (lang -> content), .group, .mono_languages, ...
                                              #   (with data.stream: a function returning an iterator)
    task.overlap_report() -> str | None       # train/eval leak description, None when clean
    task.build_model(device) -> nn.Module     # every trainable parameter, checkpointed as one module
    task.loss(batch) -> (loss tensor, dict)   # a sampler Batch (this rank's pairs; batch.items holds
                                              #   the records when streaming) -> scalar loss + logs
    task.evaluate() -> dict | None            # metrics.json-style dict, or None without eval data
    task.save_model(path)                     # the final model in its serving layout

Optional, for `train.mini_batch` (cached chunks, see `mixlingual.training.gradcache`): `split_batch(batch,
size) -> (context, chunks)`, `embed(chunk) -> tuple of tensors`, `loss_from_embeddings(embeddings,
context) -> (loss, dict)` (what `loss(batch)` computes, from embeddings) and `loss_parameters()`.

The loop owns everything else (sampler, optimizer, precision, accumulation, DDP gradient
averaging, logging, evaluation schedule, checkpoints), so a new modality (image-text) adds one
class here and one line in `TASKS`, selected by the config key `train.task`.
"""

from __future__ import annotations

import importlib

from mixlingual.errors import ConfigError

# train.task -> "module:Class"
TASKS: dict[str, str] = {
    "text": "mixlingual.training.tasks.text:TextRetrievalTask",
    "image-text": "mixlingual.imagetext.task:ImageTextTask",
}


def make_task(config):
    """Instantiate the task named by `config.train.task`."""
    name = config.train.task
    if name not in TASKS:
        raise ConfigError(f"train.task: unknown task '{name}'; known: {', '.join(TASKS)}")
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(config)
