"""A tiny multilingual text tower built from a caption corpus, for offline image-text training.

When no pretrained multilingual encoder is at hand (or for quick experiments), the text tower
can be a small BERT trained from scratch together with the image tower. Its tokenizer is a
word-level vocabulary learned with the `tokenizers` library from the training captions
(lower-cased; CJK characters split one per token by the BERT normalizer, so Chinese needs no
segmenter). The folder it writes loads with `BiEncoder.from_pretrained(folder)`, like any model.

    folder = make_caption_text_tower("runs/tiny-text", captions, hidden_size=64, layers=2)
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_caption_tokenizer(texts: list[str], *, max_length: int = 64, min_frequency: int = 1):
    """A word-level fast tokenizer whose vocabulary covers `texts` (plus the e5-style prefixes)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=False, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIALS, min_frequency=min_frequency)
    tok.train_from_iterator(["query: passage:"] + list(texts), trainer=trainer)
    vocab = tok.get_vocab()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=max_length)


def make_caption_text_tower(path, texts: list[str], *, hidden_size: int = 64, layers: int = 2,
                            heads: int = 2, max_length: int = 64, seed: int = 0) -> str:
    """Write a randomly initialized small BERT + caption tokenizer to `path`; return the folder."""
    import torch
    from transformers import BertConfig, BertModel

    from mixlingual.io import replace_folder

    tokenizer = train_caption_tokenizer(texts, max_length=max_length)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden_size,
                        max_position_embeddings=max_length, pad_token_id=0)
    torch.manual_seed(seed)  # the same seed gives the same tower (resume rebuilds it before loading)
    model = BertModel(config, add_pooling_layer=False)

    def build(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    replace_folder(build, str(path))  # written beside and swapped in: never a half-written folder
    return str(Path(path))
