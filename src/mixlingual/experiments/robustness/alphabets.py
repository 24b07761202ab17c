"""Unicode script of a character, and same-script alphabets to draw typo characters from.

Python's `unicodedata` has no Script property, but every letter's Unicode name starts with its
script ("LATIN SMALL LETTER A", "DEVANAGARI LETTER KA", "CJK UNIFIED IDEOGRAPH-4E00"), which is
what `char_script` reads. Spaces, punctuation, symbols and digits are "Common"; combining marks
named "COMBINING ..." are "Inherited" (they take the script of their base letter).

`alphabet(script)` lists the letters a typo may insert or substitute for that script: the basic
letters of its block (e.g. a-z for Latin, the consonants for Devanagari and Thai, so that no
dependent vowel sign is ever inserted where it cannot stand). Scripts outside the table get no
alphabet; callers then draw from the letters of the same script already in the text.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

COMMON, INHERITED = "Common", "Inherited"

# First words of Unicode names that are not the script, and what they stand for.
_PREFIX_SCRIPT = {"CJK": "Han", "FULLWIDTH": None, "HALFWIDTH": None, "COMBINING": INHERITED,
                  "KATAKANA-HIRAGANA": "Katakana", "MODIFIER": COMMON}

# Basic letters per script: (first, last) code points; filtered by char_script and category.
_ALPHABET_RANGES = {
    "Latin": [(0x61, 0x7A)], "Greek": [(0x3B1, 0x3C9)], "Cyrillic": [(0x430, 0x44F)],
    "Armenian": [(0x561, 0x586)], "Hebrew": [(0x5D0, 0x5EA)], "Arabic": [(0x621, 0x64A)],
    "Devanagari": [(0x915, 0x939)], "Bengali": [(0x995, 0x9B9)], "Gurmukhi": [(0xA15, 0xA39)],
    "Gujarati": [(0xA95, 0xAB9)], "Oriya": [(0xB15, 0xB39)], "Tamil": [(0xB95, 0xBB9)],
    "Telugu": [(0xC15, 0xC39)], "Kannada": [(0xC95, 0xCB9)], "Malayalam": [(0xD15, 0xD39)],
    "Sinhala": [(0xD9A, 0xDC6)], "Thai": [(0xE01, 0xE2E)], "Lao": [(0xE81, 0xEAE)],
    "Tibetan": [(0xF40, 0xF6C)], "Myanmar": [(0x1000, 0x1020)], "Georgian": [(0x10D0, 0x10FA)],
    "Ethiopic": [(0x1200, 0x135A)], "Khmer": [(0x1780, 0x17A2)], "Hangul": [(0xAC00, 0xD7A3)],
    "Hiragana": [(0x3041, 0x3096)], "Katakana": [(0x30A1, 0x30FA)], "Han": [(0x4E00, 0x9FFF)],
}


@lru_cache(maxsize=65536)
def char_script(ch: str) -> str:
    """The script of one character: 'Latin', 'Cyrillic', 'Han', ..., 'Common' or 'Inherited'."""
    category = unicodedata.category(ch)
    if category[0] in "PSZNC":
        return COMMON
    words = unicodedata.name(ch, "").split()
    if not words:
        return COMMON
    first = words[0]
    if first in _PREFIX_SCRIPT:
        mapped = _PREFIX_SCRIPT[first]
        if mapped is not None:
            return mapped
        words = words[1:] or ["UNKNOWN"]   # FULLWIDTH LATIN ... -> LATIN
        first = words[0]
    if first == "CJK":
        return "Han"
    return first.capitalize()


def is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def text_scripts(text: str) -> set[str]:
    """The scripts of the letters and marks of a text (Common and Inherited left out)."""
    return {s for s in map(char_script, text) if s not in (COMMON, INHERITED)}


def dominant_script(text: str) -> str | None:
    """The script of most letters of the text (None when it has no letter)."""
    counts = Counter(char_script(ch) for ch in text if is_letter(ch))
    return counts.most_common(1)[0][0] if counts else None


@lru_cache(maxsize=None)
def alphabet(script: str) -> tuple[str, ...]:
    """Basic letters of `script` (empty when the script is not in the table)."""
    letters = []
    for first, last in _ALPHABET_RANGES.get(script, []):
        for code in range(first, last + 1):
            ch = chr(code)
            if unicodedata.category(ch) in ("Lo", "Ll", "Lu") and char_script(ch) == script:
                letters.append(ch)
    return tuple(letters)
