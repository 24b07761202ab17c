"""Sentence splitting with character spans, for answer-sentence retrieval (MLQA, MLQA-R).

The default splitter is `sentencex` (Wikimedia's rule-based segmenter for ~300 languages; pure
Python, fast). `pysbd` is the alternative (23 languages; others fall back to its English rules).
Measured against XQuAD-R's gold sentence boundaries (see docs/data.md and
`bench/sentence_split_agreement.py`), sentencex reproduces 93-97% of gold sentences exactly in
ar/de/el/en/es/hi/ru/vi/zh and is ~50x faster than pysbd. Neither splits Thai (which marks
sentence ends with a space, not punctuation), so Thai gets a rule of its own: split at spaces.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache

SPLITTERS = ("sentencex", "pysbd")
# languages pysbd has rules for; others use its English rules
_PYSBD_LANGS = {"en", "hi", "mr", "zh", "es", "am", "ar", "hy", "bg", "ur", "ru", "pl", "fa", "nl",
                "da", "fr", "my", "el", "it", "ja", "de", "kk", "sk"}
_THAI_BREAK = re.compile(r"\s+")
# whitespace plus invisible marks that str.strip() keeps (zero-width space, BOM, direction marks)
_TRIM = " \t\n\r\f\v\u00a0\u200b\u200e\u200f\u2028\u2029\u3000\ufeff"


@lru_cache(maxsize=64)
def _pysbd_segmenter(lang: str):
    import pysbd

    return pysbd.Segmenter(language=lang if lang in _PYSBD_LANGS else "en", clean=False)


def _raw_sentences(text: str, lang: str, splitter: str) -> list[str]:
    base = lang.replace("_", "-").split("-")[0].lower()
    if base in ("th", "tha"):
        return _THAI_BREAK.split(text)
    if splitter == "sentencex":
        from sentencex import segment

        return list(segment(base, text))
    if splitter == "pysbd":
        return _pysbd_segmenter(base).segment(text)
    raise ValueError(f"unknown sentence splitter {splitter!r}; choose one of {', '.join(SPLITTERS)}")


def sentence_spans(text: str, lang: str, splitter: str = "sentencex") -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, in order, whitespace trimmed.

    Spans index into `text` itself, so a QA answer offset can be mapped to its sentence. A
    piece the splitter returns that cannot be found verbatim (a splitter that rewrote text)
    is kept as part of a trailing span; pieces without any letter or digit are not sentences.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in _raw_sentences(text, lang, splitter):
        piece = piece.strip(_TRIM)
        if not any(ch.isalnum() for ch in piece):  # stray punctuation or marks, not a sentence
            continue
        start = text.find(piece, cursor)
        if start < 0:
            continue
        spans.append((start, start + len(piece)))
        cursor = start + len(piece)
    tail = text[cursor:].strip(_TRIM)
    if any(ch.isalnum() for ch in tail):  # text the splitter dropped or rewrote: keep it as a sentence of its own
        start = text.find(tail, cursor)
        spans.append((start, start + len(tail)))
    return spans


def split_sentences(text: str, lang: str, splitter: str = "sentencex") -> list[str]:
    """The sentences of `text` (see `sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text, lang, splitter)]


def sentence_index_at(spans: list[tuple[int, int]], offset: int) -> int | None:
    """Index of the sentence holding character `offset` (whitespace after a sentence belongs
    to it); None when `offset` lies before the first sentence or past the text."""
    if not spans or offset < spans[0][0]:
        return None
    index = bisect_right([s for s, _ in spans], offset) - 1
    if index == len(spans) - 1 and offset >= spans[-1][1]:
        return None
    return index
