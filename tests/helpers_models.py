"""Shared test helpers: tiny randomly initialized models that load like real ones.

    from helpers_models import make_tiny_model_dir
    folder = make_tiny_model_dir(tmp_path / "tiny")
    enc = BiEncoder.from_pretrained(folder)

The model is a 2-layer BERT (hidden 32) with a word-level tokenizer built with the `tokenizers`
library: lowercase, split on whitespace and punctuation, one id per known word or ascii letter,
[UNK] otherwise. Everything is written locally; nothing needs the network.
"""

from __future__ import annotations

import string
from pathlib import Path

TINY_WORDS = (
    "the a an of in on to and or is are was were be what who where when how why which "
    "query passage city river country capital language book house water fire music sun moon "
    "day night cat dog bird tree red blue green big small old new first last one two three "
    "paris london berlin madrid rome tokyo france germany spain italy japan england"
).split()


def _tiny_tokenizer(max_length: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = specials + list(string.ascii_lowercase) + list(string.digits) + \
        list(string.punctuation) + TINY_WORDS
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length), len(vocab)


def make_tiny_model_dir(path, *, seed: int = 0, max_length: int = 128,
                        hidden_size: int = 32, layers: int = 2) -> str:
    """Write a tiny random BERT + tokenizer into ``path``; return the folder as a string.

    Loadable by ``BiEncoder.from_pretrained(path)``, ``AutoModel`` and ``AutoTokenizer``.
    The same seed gives the same weights.
    """
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab_size = _tiny_tokenizer(max_length)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden_size,
                        max_position_embeddings=max_length, pad_token_id=0)
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)
