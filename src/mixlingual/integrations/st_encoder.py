"""Encode with a sentence-transformers model whose module stack BiEncoder does not reproduce.

LaBSE's ST folder is Transformer -> Pooling(CLS) -> Dense(768, tanh) -> Normalize; BiEncoder
implements transformer + pooling + normalize only, so loading the folder with it would silently
drop the Dense layer. This adapter runs the whole ST pipeline instead (frozen, for evaluation),
adding our query/passage prefixes itself so presets behave the same as with BiEncoder. As there,
kind="sentence" (symmetric tasks: bitext, probes) takes the query prefix and the model's full length.
"""

from __future__ import annotations

import numpy as np

from mixlingual.errors import ModelError

KINDS = ("query", "passage", "sentence")


class SentenceTransformerAdapter:
    """`encode(texts, kind=, batch_size=)` over `sentence_transformers.SentenceTransformer(name)`."""

    def __init__(self, name: str, *, device: str = "cpu", query_prefix: str = "", passage_prefix: str = "",
                 normalize: bool = True, max_length_query: int | None = None,
                 max_length_passage: int | None = None, **ignored):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(name, device=device, local_files_only=True)
        except Exception as err:  # ST raises OSError/ValueError/HF errors alike for a missing model
            raise ModelError(f"cannot load sentence-transformers model {name!r} from a folder or the local "
                             f"Hugging Face cache: {str(err).splitlines()[0]}") from err
        self.name = name
        self.prefixes = {"query": query_prefix, "passage": passage_prefix, "sentence": query_prefix}
        self.normalize = normalize
        lengths = [x for x in (max_length_query, max_length_passage) if x]
        shared = max(lengths) if lengths else self.model.max_seq_length   # one length for both sides
        self.lengths = {"query": shared, "passage": shared, "sentence": _full_length(self.model)}
        # settings that only BiEncoder understands (pooling, long_input, precision) are fixed by
        # the ST folder itself; keep them visible instead of dropping them silently
        self.ignored_settings = dict(ignored)

    @property
    def dim(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        if kind not in KINDS:
            raise ModelError(f"kind must be one of {KINDS}, got {kind!r}")
        prefix = self.prefixes[kind]
        self.model.max_seq_length = self.lengths[kind]
        vectors = self.model.encode([prefix + t for t in texts], batch_size=batch_size,
                                    show_progress_bar=bool(show_progress), convert_to_numpy=True,
                                    normalize_embeddings=self.normalize)
        return np.asarray(vectors, dtype=np.float32)


def _full_length(model) -> int:
    """The longest input the ST model's transformer accepts (what kind="sentence" encodes at)."""
    from mixlingual.models.backbones import model_max_length

    return model_max_length(model[0].auto_model, model.tokenizer)
