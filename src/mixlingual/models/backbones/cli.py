"""`mixlingual backbone NAME [--save DIR]`: materialize a backbone and describe it."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="embedded:multilingual-e5-small, a model folder or a "
                                     "Hugging Face id")
    parser.add_argument("--save", metavar="DIR",
                        help="also write it as a sentence-transformers folder (safetensors)")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")


def describe(encoder, source_dir: str | None) -> dict:
    """What a user wants to know about a loaded encoder, as plain values."""
    model_config = encoder.model.config
    return {
        "name": encoder.name,
        "parameters": sum(p.numel() for p in encoder.model.parameters()),
        "dim": encoder.dim,
        "layers": getattr(model_config, "num_hidden_layers", None),
        "vocab": getattr(model_config, "vocab_size", None),
        "max_length": encoder.max_model_length,
        "max_length_query": encoder.config.max_length_query,
        "max_length_passage": encoder.config.max_length_passage,
        "query_prefix": encoder.config.query_prefix,
        "passage_prefix": encoder.config.passage_prefix,
        "pooling": encoder.config.pooling,
        "normalize": encoder.config.normalize,
        "folder": source_dir,
        "fingerprint": encoder.fingerprint(),
    }


def run(args: argparse.Namespace) -> int:
    from mixlingual.models.backbones import load_backbone
    from mixlingual.models.encoder import BiEncoder

    backbone = load_backbone(args.name)
    encoder = BiEncoder.from_backbone(backbone)
    info = describe(encoder, backbone.source_dir)
    if args.save:
        encoder.save(args.save)
        info["saved_to"] = args.save
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        width = max(len(key) for key in info)
        for key, value in info.items():
            shown = repr(value) if isinstance(value, str) and key.endswith("prefix") else value
            print(f"{key:<{width}}  {shown}")
    return 0
