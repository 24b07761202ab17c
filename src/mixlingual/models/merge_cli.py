"""`mixlingual merge A B --weight W --out DIR`: linear merge of models (see `models.merge`).

    mixlingual merge embedded:multilingual-e5-small runs/x/model --weight 0.3 --out runs/merged
    mixlingual merge A B C --weights 0.2,0.3,0.5 --out runs/merged
    mixlingual merge --base-from-config runs/x/config.yaml runs/x/model --weight 0.5 --out runs/merged

Two parents with `--weight W` give (1 - W) * A + W * B (W is B's weight); several parents take
`--weights`, one per parent, summing to 1. `--base-from-config` puts the model a training config
starts from (its model.name with its prefix and length settings) first. The output is a
sentence-transformers folder with merge.json (parents, fingerprints, weights, result fingerprint).
"""

from __future__ import annotations

import argparse
import json

from mixlingual.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="parent models: model folders, embedded:multilingual-e5-small or HF ids")
    parser.add_argument("--weight", type=float, default=None,
                        help="two parents: the second parent's weight W in (1 - W) * A + W * B")
    parser.add_argument("--weights", default=None,
                        help="comma-separated weights, one per parent, summing to 1 (e.g. 0.2,0.3,0.5)")
    parser.add_argument("--base-from-config", default=None, metavar="CONFIG",
                        help="training config (e.g. OUT/config.yaml): its starting model is the first parent")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")


def parse_weights(args: argparse.Namespace, parents: int) -> list[float]:
    """The per-parent weights from --weight (two parents) or --weights."""
    if (args.weight is None) == (args.weights is None):
        raise ConfigError("give --weight W (two parents) or --weights w1,w2,... (one per parent), not both")
    if args.weight is not None:
        if parents != 2:
            raise ConfigError(f"--weight: takes exactly two parents, got {parents}; use --weights for more")
        return [1.0 - args.weight, args.weight]
    try:
        return [float(part) for part in args.weights.split(",")]
    except ValueError:
        raise ConfigError(f"--weights: expected comma-separated numbers, got {args.weights!r}") from None


def _loader(base_config: str | None):
    """Parent name -> BiEncoder; the marker name of --base-from-config loads the config's base."""
    from mixlingual.models.encoder import BiEncoder

    def load(name: str):
        if base_config is not None and name == base_config:
            from mixlingual.training.config import load_config
            from mixlingual.training.tasks.text import base_encoder

            return base_encoder(load_config(base_config).model)
        return BiEncoder.from_pretrained(name)

    return load


def run(args: argparse.Namespace) -> int:
    from mixlingual.models.merge import merge_models

    names = ([args.base_from_config] if args.base_from_config else []) + list(args.models)
    weights = parse_weights(args, len(names))
    result = merge_models(names, weights, args.out, loader=_loader(args.base_from_config))
    record = result.record()
    print(json.dumps({"out": args.out, "weights": record["weights"], "tensors": record["tensors"],
                      "fingerprint": record["fingerprint"]}))
    return 0
