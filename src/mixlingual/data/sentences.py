"""Sentence splitting with character spans, for answer-sentence retrieval (MLQA, MLQA-R).

Splitters (`splitter=`):

* `"icu"` (default) - the Unicode sentence-break rules of ICU (PyICU, via `pyicu-wheels`),
  the segmenter LAReQA used: on MLQA dev it reproduces LAReQA's published MLQA-R candidate
  counts within 1% for ar/hi/vi with no tuning at all;
* `"sentencex"` - Wikimedia's rule-based segmenter (~300 languages, pure Python);
* `"pysbd"` - pySBD (23 languages; others fall back to its English rules).

ICU is a dependency; sentencex and pySBD serve the splitter benchmark and comparisons only and
come with the `splitters` extra (``pip install 'mixlingual[splitters]'``): they are imported
when first used, with an error naming the extra where they are missing.

Every splitter's raw pieces then go through the same clean-up, which undoes breaks that do
not end a sentence: a piece that starts like a continuation (a citation tail such as "71]",
closing punctuation, a lowercase letter) or has no letter or digit joins the piece before it.
Two more merges are per language (`PROFILES`, chosen by measuring against LAReQA's MLQA-R
counts; see docs/data.md): German and English join a piece ending in a one- or two-digit
ordinal or a one-letter initial ("am 14." + "Februar", "Paul J." + "Smith") to the next, and
Chinese joins a piece starting with a digit to the previous one. Thai, which marks sentence
ends with a space rather than punctuation, is split at spaces.
"""

from __future__ import annotations

import importlib
import logging
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

logger = logging.getLogger("mixlingual.data")

SPLITTERS = ("icu", "sentencex", "pysbd")
SPLITTERS_EXTRA = "pip install 'mixlingual[splitters]'"
_PYSBD_LANGS = {"en", "hi", "mr", "zh", "es", "am", "ar", "hy", "bg", "ur", "ru", "pl", "fa", "nl",
                "da", "fr", "my", "el", "it", "ja", "de", "kk", "sk"}
# whitespace plus invisible marks that str.strip() keeps (zero-width space, BOM, direction marks)
_TRIM = " \t\n\r\f\v\u00a0\u200b\u200e\u200f\u2028\u2029\u3000\ufeff"
# a piece that continues the previous one: citation tail ("71]"), closing punctuation, lowercase
_CONTINUATION = re.compile(r"^(?:[^\[\]\s]{0,12}\]|[\])}.,;:!?\u3002\uff0c\u3001\uff1b\uff1a\uff01\uff1f"
                           r"\u300d\u300f\u201d\u2019\u00bb\u203a\u2026])")
_ENDS_WITH_ORDINAL_OR_INITIAL = re.compile(r"(?:^|\s)(?:\d{1,2}|\w)\.$")


@dataclass(frozen=True)
class SplitProfile:
    """Per-language clean-up of raw splits (see the module docstring)."""

    icu_locale_suffix: str = ""        # "@ss=standard": ICU's abbreviation suppressions
    merge_ordinals_initials: bool = False
    merge_digit_start: bool = False


PROFILES: dict[str, SplitProfile] = {
    "de": SplitProfile(merge_ordinals_initials=True),
    "en": SplitProfile(icu_locale_suffix="@ss=standard", merge_ordinals_initials=True),
    "zh": SplitProfile(merge_digit_start=True),
}


def base_language(lang: str) -> str:
    """'zh-Hans' -> 'zh', 'eng_Latn' -> 'eng'."""
    return lang.replace("_", "-").split("-")[0].lower()


@lru_cache(maxsize=1)
def icu_available() -> bool:
    try:
        import icu  # noqa: F401  (PyICU, installed by pyicu-wheels)
    except ImportError:
        return False
    return True


@lru_cache(maxsize=64)
def _icu_iterator(locale: str):
    import icu

    return icu.BreakIterator.createSentenceInstance(icu.Locale(locale))


def _import_optional_splitter(module: str):
    """The module of an optional splitter (sentencex, pysbd), or an ImportError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"splitter '{module}' is optional: {SPLITTERS_EXTRA} "
                          f"(or use splitter='icu', the default)") from None


@lru_cache(maxsize=64)
def _pysbd_segmenter(lang: str):
    pysbd = _import_optional_splitter("pysbd")
    return pysbd.Segmenter(language=lang if lang in _PYSBD_LANGS else "en", clean=False)


def _raw_pieces(text: str, lang: str, splitter: str) -> list[str]:
    base = base_language(lang)
    if base in ("th", "tha"):
        return re.split(r"\s+", text)
    if splitter == "icu":
        if not icu_available():
            raise ImportError(f"splitter 'icu' needs PyICU: pip install pyicu-wheels "
                              f"(or use splitter='sentencex' after {SPLITTERS_EXTRA})")
        import icu

        iterator = _icu_iterator(base + PROFILES.get(base, SplitProfile()).icu_locale_suffix)
        utext = icu.UnicodeString(text)  # ICU offsets count UTF-16 units: slice the UnicodeString
        iterator.setText(utext)
        bounds = [0, *iterator]
        return [str(utext[a:b]) for a, b in pairwise(bounds)]
    if splitter == "sentencex":
        return list(_import_optional_splitter("sentencex").segment(base, text))
    if splitter == "pysbd":
        return _pysbd_segmenter(base).segment(text)
    raise ValueError(f"unknown sentence splitter {splitter!r}; choose one of {', '.join(SPLITTERS)}")


def _joins_previous(piece: str, profile: SplitProfile) -> bool:
    if not any(ch.isalnum() for ch in piece) or _CONTINUATION.match(piece) or piece[:1].islower():
        return True
    return profile.merge_digit_start and piece[:1].isdigit()


def merge_pieces(text: str, spans: list[tuple[int, int]], lang: str) -> list[tuple[int, int]]:
    """Join spans that do not start or end a sentence (see the module docstring)."""
    profile = PROFILES.get(base_language(lang), SplitProfile())
    merged: list[list[int]] = []
    for start, end in spans:
        previous = text[merged[-1][0]:merged[-1][1]] if merged else ""
        if merged and (_joins_previous(text[start:end], profile) or (
                profile.merge_ordinals_initials and _ENDS_WITH_ORDINAL_OR_INITIAL.search(previous))):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged if any(ch.isalnum() for ch in text[a:b])]


def sentence_spans(text: str, lang: str, splitter: str = "icu") -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, in order, whitespace trimmed.

    Spans index into `text` itself, so a QA answer offset can be mapped to its sentence. Text
    a splitter rewrote (so it cannot be found verbatim) ends up in a trailing span: nothing is
    lost.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in _raw_pieces(text, lang, splitter):
        piece = piece.strip(_TRIM)
        start = text.find(piece, cursor) if piece else -1
        if start < 0:
            continue
        spans.append((start, start + len(piece)))
        cursor = start + len(piece)
    tail = text[cursor:].strip(_TRIM)
    if tail:
        start = text.find(tail, cursor)
        spans.append((start, start + len(tail)))
    return merge_pieces(text, spans, lang)


def split_sentences(text: str, lang: str, splitter: str = "icu") -> list[str]:
    """The sentences of `text` (see `sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text, lang, splitter)]


def default_splitter() -> str:
    """'icu' when PyICU is installed, else 'sentencex' (with a warning: counts drift from LAReQA's)."""
    if icu_available():
        return "icu"
    logger.warning("PyICU not installed (pip install pyicu-wheels): splitting sentences with sentencex")
    return "sentencex"


def sentence_index_at(spans: list[tuple[int, int]], offset: int) -> int | None:
    """Index of the sentence holding character `offset` (whitespace after a sentence belongs
    to it); None when `offset` lies before the first sentence or past the text."""
    if not spans or offset < spans[0][0]:
        return None
    index = bisect_right([s for s, _ in spans], offset) - 1
    if index == len(spans) - 1 and offset >= spans[-1][1]:
        return None
    return index


@lru_cache(maxsize=8192)
def cached_sentence_spans(text: str, lang: str, splitter: str = "icu") -> tuple[tuple[int, int], ...]:
    """`sentence_spans`, memoized: MLQA repeats each paragraph for every question and file."""
    return tuple(sentence_spans(text, lang, splitter))
