"""Linear model merging: theta = sum_i w_i * theta_i over bi-encoders of one architecture.

    merged = merge_encoders([base, tuned], [0.7, 0.3])     # = torch.lerp(base, tuned, 0.3)
    save_merged(merged, "runs/merged")                     # ST folder + merge.json

Two parents with weights (1 - W, W) are merged with ``torch.lerp(A, B, W)``; more parents with
the weighted sum (weights in [0, 1], summing to 1). The arithmetic runs in float32 and the result
is cast back to the parents' dtype. A tensor equal (bit for bit) in every parent is *copied*, not
recomputed: float32 ``lerp(a, a, W)`` can differ from ``a`` in the last bit, and copying keeps
frozen parameters (e.g. ``model.freeze_word_embeddings``) exactly where they were, so merging a
model with itself gives it back bit for bit at any W.

Parents must agree on what the weights mean: architecture (model class and its size settings,
then every tensor's name, shape and dtype), tokenizer (the fast tokenizer's JSON, truncation and
padding state aside), prefixes, pooling and normalization. The first difference is refused with a
one-line `ModelError` naming it. Lengths and long-input settings are taken from the first parent.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from mixlingual.errors import ConfigError, ModelError

MERGE_FILE = "merge.json"
_FORMAT_VERSION = 1
_WEIGHT_SUM_TOLERANCE = 1e-6
# config fields that change what a tensor means even when its shape does not
_ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "vocab_size", "max_position_embeddings", "type_vocab_size", "hidden_act", "layer_norm_eps",
              "position_embedding_type")
# settings that change what the vectors mean: parents must agree on them
_VECTOR_SETTINGS = ("query_prefix", "passage_prefix", "pooling", "normalize")
# parts of a tokenizer's JSON that hold no vocabulary or text processing (call-time state)
_TOKENIZER_STATE = ("truncation", "padding")


@dataclass
class MergeResult:
    """The merged encoder (the first parent, its weights replaced) and what went into it."""

    encoder: object            # BiEncoder
    parents: list[dict]        # {"name", "fingerprint", "weight"} per parent, in order
    merged_tensors: int        # tensors computed from the weights
    copied_tensors: int        # tensors equal in every parent, copied unchanged

    def record(self) -> dict:
        """The merge.json content (the result's fingerprint included)."""
        return {"format_version": _FORMAT_VERSION,
                "method": "lerp(A, B, W)" if len(self.parents) == 2 else "weighted sum",
                "formula": "theta = sum_i weight_i * theta_i (two parents: (1 - W) * A + W * B)",
                "arithmetic": "float32, stored in the parents' dtype; tensors equal in every parent copied",
                "parents": self.parents, "weights": [p["weight"] for p in self.parents],
                "settings_from": self.parents[0]["name"],
                "tensors": {"merged": self.merged_tensors, "copied": self.copied_tensors},
                "fingerprint": self.encoder.fingerprint()}


def check_weights(weights, parents: int) -> list[float]:
    """Weights as floats: one per parent, each in [0, 1], summing to 1 (within 1e-6)."""
    weights = [float(w) for w in weights]
    if len(weights) != parents:
        raise ConfigError(f"--weights: {len(weights)} weight(s) for {parents} parent model(s); give one per parent")
    for index, weight in enumerate(weights):
        if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
            raise ConfigError(f"--weights: weight {index + 1} must be in [0, 1], got {weight}")
    if abs(sum(weights) - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise ConfigError(f"--weights: must sum to 1, got {weights} (sum {sum(weights):.6g})")
    return weights


def tokenizer_signature(tokenizer) -> dict:
    """The tokenizer's content by section (normalizer, model, added_tokens, ...), for comparison.

    A fast tokenizer is described by its JSON minus call-time state; a slow one by its vocabulary
    and special tokens.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        data = json.loads(backend.to_str())
        return {key: value for key, value in data.items() if key not in _TOKENIZER_STATE}
    return {"vocab": sorted(tokenizer.get_vocab().items()),
            "special_tokens": sorted(map(str, tokenizer.all_special_tokens))}


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 (16 hex) of `tokenizer_signature`: equal for tokenizers that split texts the same way."""
    text = json.dumps(tokenizer_signature(tokenizer), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _first_difference(a: dict, b: dict, keys) -> str | None:
    for key in keys:
        if a.get(key) != b.get(key):
            return key
    return None


def check_compatible(first, other, first_name: str, other_name: str) -> None:
    """Raise a one-line ModelError naming the first difference between two encoders."""
    def refuse(what: str, mine, theirs) -> None:
        raise ModelError(f"cannot merge '{first_name}' and '{other_name}': {what} differs "
                         f"({mine!r} vs {theirs!r})")

    if type(first.model).__name__ != type(other.model).__name__:
        refuse("architecture", type(first.model).__name__, type(other.model).__name__)
    config_a, config_b = first.model.config.to_dict(), other.model.config.to_dict()
    key = _first_difference(config_a, config_b, _ARCH_KEYS)
    if key:
        refuse(f"architecture ({key})", config_a.get(key), config_b.get(key))
    tokens_a, tokens_b = tokenizer_signature(first.tokenizer), tokenizer_signature(other.tokenizer)
    key = _first_difference(tokens_a, tokens_b, sorted(set(tokens_a) | set(tokens_b)))
    if key:
        refuse(f"tokenizer ({key})", tokenizer_fingerprint(first.tokenizer), tokenizer_fingerprint(other.tokenizer))
    settings_a, settings_b = vars(first.config), vars(other.config)
    key = _first_difference(settings_a, settings_b, _VECTOR_SETTINGS)
    if key:
        refuse(key, settings_a[key], settings_b[key])
    state_a, state_b = first.model.state_dict(), other.model.state_dict()
    missing = sorted(set(state_a) ^ set(state_b))
    if missing:
        refuse("architecture (tensor names)", f"{missing[0]} in {'A' if missing[0] in state_a else 'B'}", "absent")
    for name, tensor in state_a.items():
        theirs = state_b[name]
        if (tensor.shape, tensor.dtype) != (theirs.shape, theirs.dtype):
            refuse(f"tensor {name}", (tuple(tensor.shape), str(tensor.dtype)),
                   (tuple(theirs.shape), str(theirs.dtype)))


def _merge_tensor(name: str, tensors: list[torch.Tensor], weights: list[float]) -> tuple[torch.Tensor, bool]:
    """(merged tensor, whether it was copied because every parent holds the same bits)."""
    first = tensors[0]
    if all(torch.equal(first, t) for t in tensors[1:]):
        return first, True   # load_state_dict copies it into the target
    if not first.is_floating_point():
        raise ModelError(f"cannot merge: integer tensor {name} differs between parents (it cannot be averaged)")
    if len(tensors) == 2:
        merged = torch.lerp(tensors[0].float(), tensors[1].float(), weights[1])
    else:
        merged = sum(w * t.float() for w, t in zip(weights, tensors))
    return merged.to(first.dtype), False


def merge_encoders(encoders: list, weights, names: list[str] | None = None) -> MergeResult:
    """Merge BiEncoders into the first one (its weights are replaced; the others are untouched).

    `weights`: one per encoder, in [0, 1], summing to 1. `names` label the parents in errors and
    in the record (default: each encoder's `name`).
    """
    if len(encoders) < 2:
        raise ConfigError(f"merge: need at least two parent models, got {len(encoders)}")
    weights = check_weights(weights, len(encoders))
    names = list(names or [e.name for e in encoders])
    for encoder, name in zip(encoders[1:], names[1:]):
        check_compatible(encoders[0], encoder, names[0], name)
    parents = [{"name": name, "fingerprint": encoder.fingerprint(), "weight": weight,
                "tokenizer": tokenizer_fingerprint(encoder.tokenizer)}
               for encoder, name, weight in zip(encoders, names, weights)]
    states = [{k: v.detach().cpu() for k, v in e.model.state_dict().items()} for e in encoders]
    merged, copied = {}, 0
    with torch.no_grad():
        for key in states[0]:
            merged[key], was_copied = _merge_tensor(key, [s[key] for s in states], weights)
            copied += was_copied
    target = encoders[0]
    target.model.load_state_dict(merged, strict=True)
    return MergeResult(target, parents, len(merged) - copied, copied)


def save_merged(result: MergeResult, out) -> Path:
    """Write the merged encoder as a sentence-transformers folder with merge.json, atomically."""
    from mixlingual.io import replace_folder, write_json_atomic

    def build(tmp: Path) -> None:
        result.encoder.save(str(tmp))
        write_json_atomic(Path(tmp) / MERGE_FILE, result.record())

    replace_folder(build, str(out))
    return Path(out)


def merge_models(names: list[str], weights, out, *, loader=None) -> MergeResult:
    """Load parents by name (`BiEncoder.from_pretrained`, or `loader(name)`), merge, save to `out`."""
    if loader is None:
        from mixlingual.models.encoder import BiEncoder

        loader = BiEncoder.from_pretrained
    if len(names) < 2:
        raise ConfigError(f"merge: need at least two parent models, got {len(names)}")
    weights = check_weights(weights, len(names))
    encoders = [loader(name) for name in names]
    result = merge_encoders(encoders, weights, names)
    save_merged(result, out)
    return result
