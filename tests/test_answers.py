"""Answer matching and placement (`mixlingual.data.answers`), the rules behind the mlqa loader's
hard negatives and German answer placement."""

from __future__ import annotations

import pytest

from mixlingual.data.answers import contains_answer, place_answer
from mixlingual.data.sentences import sentence_spans


@pytest.mark.parametrize("text, answer, lang, expected", [
    ("Er zog nach BERLIN, später.", "Berlin", "de", True),       # casefold, comma is not part of a token
    ("Die Stadt Berlin-Mitte wuchs.", "Berlin", "de", True),     # hyphen splits tokens
    ("Viele Berliner feierten.", "Berlin", "de", False),         # inside a longer word
    ("Der Preis war 1.950 Euro.", "1950", "de", False),          # "1.950" is the tokens 1 and 950
    ("Das Werk ﬁel 1950.", "fiel", "de", True),                  # NFKC: the ligature is "fi"
    ("Sie wohnt in New York City.", "New York", "en", True),     # a multi-token answer, contiguous
    ("Sie wohnt in York, nicht New Jersey.", "New York", "en", False),
    ("Er sagte: „?“", "?", "de", False),                         # an answer of punctuation only matches nothing
    ("他出生于北京市。", "北京", "zh", True),                       # no spaces: any occurrence counts
    ("他出生于北京市。", "北京", None, False),                      # without the language: whole tokens only
])
def test_contains_answer_matches_whole_normalized_tokens(text, answer, lang, expected):
    assert contains_answer(text, answer, lang) is expected


def _place(context: str, answer: str, question: str):
    placement = place_answer(context, answer, question, sentence_spans(context, "de"))
    return placement, (context[placement.offset:].split(".")[0] if placement.offset is not None else None)


def test_place_answer_takes_the_sentence_sharing_most_words_with_the_question():
    context = "Der Verein wurde 1950 gegründet. Das Stadion wurde 1950 eröffnet. Es fasst 20000 Zuschauer."
    placement, rest = _place(context, "1950", "Wann wurde das Stadion eröffnet?")
    assert rest == "1950 eröffnet" and placement.ambiguous and placement.moved_from_first
    placement, rest = _place(context, "1950", "Welches Jahr?")          # a tie: the first sentence
    assert rest == "1950 gegründet" and placement.ambiguous and not placement.moved_from_first
    placement, rest = _place(context, "20000", "Wann wurde das Stadion eröffnet?")   # one sentence only
    assert rest == "20000 Zuschauer" and not placement.ambiguous
    assert _place(context, "Hafen", "Wo?")[0].offset is None
