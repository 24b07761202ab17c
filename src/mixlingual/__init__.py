"""mixlingual: train and evaluate multilingual dense retrievers with hybrid batch training.

The names most code needs are importable from here (loaded on first use, so `import mixlingual`
stays light); each also has its home in a subpackage (see docs/architecture.md):

    from mixlingual import BiEncoder, HybridBatchSampler, evaluate_collection
    from mixlingual.models.encoder import BiEncoder                  # the same class
    from mixlingual.integrations.sentence_transformers import ...    # SentenceTransformerTrainer bridge
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "BiEncoder": "mixlingual.models.encoder",
    "EncoderConfig": "mixlingual.models.encoder",
    "load_encoder": "mixlingual.models.load",
    "Batch": "mixlingual.training.sampling",
    "Pair": "mixlingual.training.sampling",
    "MixtureBatchSampler": "mixlingual.training.sampling",
    "HybridBatchSampler": "mixlingual.training.sampling",
    "MonolingualBatchSampler": "mixlingual.training.sampling",
    "CrossLingualBatchSampler": "mixlingual.training.sampling",
    "StreamingBatchSampler": "mixlingual.training.sampling",
    "RatioSchedule": "mixlingual.training.sampling",
    "InfoNCELoss": "mixlingual.training.loss",
    "load_config": "mixlingual.training.config",
    "train": "mixlingual.training.loop",
    "evaluate_collection": "mixlingual.evaluation.evaluate",
    "ParallelItem": "mixlingual.data.records",
    "Collection": "mixlingual.data.records",
    "load_parallel": "mixlingual.data.registry",
    "load_collection": "mixlingual.data.registry",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mixlingual' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
