"""Resolve a model name (embedded name, local folder or Hugging Face id) to model + tokenizer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mixlingual.errors import ModelError

EMBEDDED_PREFIX = "embedded:"

# A tokenizer without a declared limit reports this huge sentinel (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 10**9
_POOLER_MODELS = ("bert", "roberta", "xlm-roberta", "camembert")


@dataclass
class Backbone:
    """A loaded transformer encoder and its tokenizer.

    ``source_dir`` is the folder the files were read from (the conversion cache for embedded
    backbones), or None for a hub id resolved by transformers itself.
    """

    name: str
    model: object  # transformers.PreTrainedModel
    tokenizer: object  # transformers.PreTrainedTokenizerBase
    source_dir: str | None = None


def model_max_length(model, tokenizer) -> int:
    """The longest input (in tokens, specials included) the model accepts.

    RoBERTa-style models reserve ``pad_token_id + 1`` positions (their position ids start after
    the padding index), so their usable length is ``max_position_embeddings - pad - 1``.
    """
    config = model.config
    limit = int(getattr(config, "max_position_embeddings", 0) or _NO_LIMIT)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(config.pad_token_id or 0) + 1
    declared = int(getattr(tokenizer, "model_max_length", _NO_LIMIT) or _NO_LIMIT)
    if declared < _NO_LIMIT:
        limit = min(limit, declared)
    return limit


def load_backbone(name: str) -> Backbone:
    """Load the transformer and tokenizer that ``name`` refers to.

    Raises ModelError naming what was tried when ``name`` is neither a known embedded name,
    nor a folder, nor a model id that can be loaded (offline machines only see the local HF cache).
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"model name must be a non-empty string, got {name!r}")
    if name.startswith(EMBEDDED_PREFIX):
        from mixlingual.models.backbones.embedded import materialize

        folder = materialize(name)
        return _load_folder(name, folder)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return _load_folder(name, str(path.resolve()))
    if path.exists():
        raise ModelError(f"model '{name}' is a file; expected a model folder, an embedded name "
                         f"or a Hugging Face model id")
    return _load_hub(name)


def _load_folder(name: str, folder: str) -> Backbone:
    """Load model + tokenizer from a folder, with a clear error when files are missing."""
    import json

    from transformers import AutoModel, AutoTokenizer

    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise ModelError(f"model folder '{folder}' has no config.json; expected a transformers "
                         f"model folder (config.json, model.safetensors, tokenizer files)")
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type", "")
    # BERT-family models build an untrained pooler unless told not to; a bi-encoder never uses it
    extra = {"add_pooling_layer": False} if model_type in _POOLER_MODELS else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder, **extra)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load model folder '{folder}': {err}") from err
    return Backbone(name=name, model=model, tokenizer=tokenizer, source_dir=folder)


def _load_hub(name: str) -> Backbone:
    """Load a Hugging Face id: first from the local cache only, then (if reachable) the hub."""
    from transformers import AutoModel, AutoTokenizer

    from mixlingual.models.backbones.embedded import EMBEDDED

    errors = []
    for local_only in (True, False):
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = AutoModel.from_pretrained(name, local_files_only=local_only)
            return Backbone(name=name, model=model, tokenizer=tokenizer, source_dir=None)
        except (OSError, ValueError) as err:
            errors.append(str(err).splitlines()[0])
        if not _hub_reachable():
            errors.append("the Hugging Face hub is not reachable from this machine")
            break
    known = ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED)
    raise ModelError(
        f"unknown model '{name}': it is not an embedded name ({known}), not an existing folder, "
        f"and it cannot be loaded from the Hugging Face cache or hub ({'; '.join(errors)})")


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub answers a TCP connect quickly; skips transformers' minute of retries offline."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
