"""Where an answer sits in its paragraph, and which sentences contain it.

Two rules for answer-sentence positives with in-paragraph hard negatives (the `mlqa` loader):

* **a hard negative never contains the item's answer** (`contains_answer`): a sentence whose
  normalized tokens hold the answer's normalized tokens as a contiguous run is the answer's
  sentence in all but position, so training it as a negative would push the question away from
  a passage that answers it. Normalization is the one the train/eval overlap check and the
  training text identity use (`overlap.normalize_text`: NFKC, casefold, punctuation and symbols
  as spaces, whitespace collapsed), so "Berlin," matches "berlin" but "Berlin" does not match
  "Berliner"; in languages written without spaces (Chinese, Japanese, Thai, ...) any occurrence
  of the normalized answer counts;
* **an answer with no offset that occurs in several sentences** is placed in the sentence that
  shares most words (distinct normalized tokens) with the question; ties go to a sentence that
  holds the answer as whole tokens, then to the first (`place_answer`), rather than always the first occurrence. On the MLQA dev answers
  that occur in several sentences (their offsets known) this finds the answer's sentence in
  60% (de, 48 answers) to 81% (en, 162) of cases, the first occurrence in 44-52%.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixlingual.data.overlap import normalize_text
from mixlingual.data.sentences import base_language, sentence_index_at

# languages written without spaces between words: a whitespace token is a phrase or a sentence
UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo"})


def contains_answer(text: str, answer: str, lang: str | None = None) -> bool:
    """Whether `answer`'s normalized tokens occur as whole, contiguous tokens of `text`'s; in a
    language written without spaces between words (UNSPACED: zh, ja, th, ...) whether the
    normalized answer occurs anywhere in the normalized text, as there are no word tokens.

    An answer that normalizes to nothing (punctuation only) is contained nowhere."""
    needle = normalize_text(answer)
    if not needle:
        return False
    if lang is not None and base_language(lang) in UNSPACED:
        return needle in normalize_text(text)
    return f" {needle} " in f" {normalize_text(text)} "


def shared_words(a: str, b: str) -> int:
    """How many distinct normalized tokens `a` and `b` have in common."""
    return len(set(normalize_text(a).split()) & set(normalize_text(b).split()))


def occurrences(context: str, answer: str) -> list[int]:
    """Every offset where `answer` occurs verbatim in `context` (overlapping ones included)."""
    found, start = [], context.find(answer)
    while answer and start >= 0:
        found.append(start)
        start = context.find(answer, start + 1)
    return found


@dataclass(frozen=True)
class Placement:
    """Where `place_answer` put an answer: its offset (None: not in the context) and how many
    sentences held an occurrence (more than one: the question chose)."""

    offset: int | None
    sentences_with_answer: int = 0
    moved_from_first: bool = False   # the question chose another sentence than the first occurrence's

    @property
    def ambiguous(self) -> bool:
        return self.sentences_with_answer > 1


def place_answer(context: str, answer: str, question: str, spans) -> Placement:
    """The answer's offset in `context` (sentence `spans` from `sentences.sentence_spans`): its
    first occurrence, or, when occurrences fall in several sentences, the first occurrence in
    the sentence sharing most words with `question`; among equals, a sentence holding the answer
    as whole tokens (not "Berlin" inside "Berliner") before one that does not, then the earliest."""
    offsets = occurrences(context, answer)
    if not offsets:
        return Placement(None)
    first_by_sentence: dict[int | None, int] = {}
    for offset in offsets:
        first_by_sentence.setdefault(sentence_index_at(list(spans), offset), offset)
    if len(first_by_sentence) == 1:
        return Placement(offsets[0], 1)

    def score(index):
        sentence = context[slice(*spans[index])] if index is not None else ""
        return shared_words(sentence, question), contains_answer(sentence, answer)

    # max() keeps the first of equal scores, and the sentences are in text order
    chosen = first_by_sentence[max(first_by_sentence, key=score)]
    return Placement(chosen, len(first_by_sentence), moved_from_first=chosen != offsets[0])
