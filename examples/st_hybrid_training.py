"""Hybrid batch training with sentence-transformers' own trainer (mixlingual samplers + loss).

    python examples/st_hybrid_training.py --model embedded:multilingual-e5-small --out runs/st-hybrid
    python examples/st_hybrid_training.py --tiny --max-steps 20 --out /tmp/st-tiny      # smoke run, no weights

Training data: a registry dataset (`--data demo` by default; e.g. `--data mlqa --path
../shared/data/mlqa/MLQA_V1/test`). Every batch is X-X (one language for query and passage,
drawn uniformly) with probability `--alpha`, else X-Y (query language != passage language);
no two items of one parallel group share a batch; the loss masks same-group positives.
The trained model is saved in sentence-transformers layout (loadable by `SentenceTransformer`
and by `mixlingual evaluate --model`).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path


def build_model(name: str | None, tiny: bool):
    """A SentenceTransformer: ST folders load as they are; other models get mean pooling + L2."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers_models import make_tiny_model_dir

        folder = make_tiny_model_dir(Path(tempfile.mkdtemp()) / "tiny")
    else:
        from mixlingual.models.backbones import load_backbone

        backbone = load_backbone(name)          # embedded:..., folder or HF id
        folder = backbone.source_dir or name
        if (Path(folder) / "modules.json").is_file():
            return SentenceTransformer(folder, device="cpu")
    transformer = Transformer(folder)
    return SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"),
                                        Normalize()], device="cpu")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:multilingual-e5-small")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random model (smoke test)")
    parser.add_argument("--data", default="demo", help="registry dataset name with parallel items")
    parser.add_argument("--path", default=None, help="dataset path (not needed for demo)")
    parser.add_argument("--alpha", type=float, default=0.5, help="probability of an X-X batch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from mixlingual.data.registry import load_parallel
    from mixlingual.integrations.sentence_transformers import (
        GroupAwareMultipleNegativesRankingLoss, mixlingual_batch_sampler, pair_dataset)

    items = list(load_parallel(args.data, args.path))
    dataset, index = pair_dataset(items)
    sampler = mixlingual_batch_sampler(items, index, alpha=args.alpha)
    model = build_model(args.model, args.tiny)
    training_args = SentenceTransformerTrainingArguments(
        output_dir=args.out, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_steps=0.1, batch_sampler=sampler, seed=args.seed,
        prompts={"anchor": "query: ", "positive": "passage: "},   # E5-style prefixes
        report_to="none", save_strategy="no", logging_steps=10, use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset,
                                         loss=GroupAwareMultipleNegativesRankingLoss(model, scale=20.0))
    trainer.train()
    model.save(args.out)
    kinds = collections.Counter(batch.kind for batch in sampler.last.history)
    print(f"{len(items)} items -> {len(dataset)} (query lang, passage lang) rows; "
          f"batches seen: {dict(kinds)}; model saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
