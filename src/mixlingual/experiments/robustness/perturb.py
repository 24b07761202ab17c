"""Query perturbations for robustness evaluation: typos, word dropout / shuffle, diacritics, case.

`perturb_collection(collection, name, rate, seed)` returns a copy whose *queries* are perturbed
(candidates untouched). Every perturbation is seeded per query (from the seed and the query id),
so a query's perturbed text does not depend on which other queries are in the collection.

`rate` is the share of the units a perturbation acts on that it changes; the count per query is
`rate x units` rounded stochastically (its expectation is exactly `rate x units`):

| name | unit | what happens |
|---|---|---|
| typo | letter | a random mix of insert / delete / substitute / swap (below) |
| typo-insert, typo-delete, typo-substitute, typo-swap | letter | one kind of typo |
| word-dropout | word | words removed (at least one word kept) |
| word-shuffle | word | chosen words move (cyclic shift among the chosen positions) |
| diacritics | letter with a diacritic | diacritics stripped (NFD, drop marks, NFC) |
| case | cased letter | case swapped |

Script safety: inserted and substituted letters come from the script of the neighbouring letter
(`alphabets.alphabet`, or the text's own letters of that script), so a perturbation never brings a
character foreign to the query's scripts; edits touch letters only, never combining marks (a
Devanagari or Thai vowel sign is never inserted alone). Diacritics are stripped only on Latin,
Greek and Cyrillic letters, where they are optional in casual typing; marks that are essential
elsewhere (Devanagari/Thai vowel signs, Arabic, Hebrew points) are kept. Word-level perturbations
of Chinese / Japanese (Han, kana: no spaces, a character is close to a morpheme) act on
characters; Thai, Lao, Khmer, Myanmar and Tibetan queries are left unchanged and counted as
skipped, because a character shuffle would break their combining vowel signs and no word
segmenter is assumed.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

from mixlingual.data.records import Collection
from mixlingual.errors import ConfigError
from mixlingual.experiments.robustness.alphabets import alphabet, char_script, dominant_script, is_letter

TYPO_OPS = ("insert", "delete", "substitute", "swap")
PERTURBATIONS = ("typo", *(f"typo-{op}" for op in TYPO_OPS), "word-dropout", "word-shuffle", "diacritics", "case")
CHARACTER_WORD_SCRIPTS = {"Han", "Hiragana", "Katakana"}
UNSEGMENTED_SCRIPTS = {"Thai", "Lao", "Khmer", "Myanmar", "Tibetan"}
DIACRITIC_SCRIPTS = {"Latin", "Greek", "Cyrillic"}


@dataclass
class Perturbed:
    text: str
    edits: int            # units changed
    units: int            # units the perturbation could act on
    skipped: str = ""     # why the query was left alone ("" when it was not)


def stochastic_round(x: float, rng: np.random.Generator) -> int:
    low = int(np.floor(x))
    return low + int(rng.random() < x - low)


def _draw_like(text: str, pos: int, rng: np.random.Generator) -> str:
    """A letter of the script of text[pos] (matching its case for bicameral scripts)."""
    ref = text[pos]
    script = char_script(ref)
    pool = alphabet(script) or tuple(sorted({c for c in text if is_letter(c) and char_script(c) == script}))
    ch = pool[int(rng.integers(len(pool)))]
    if ref.isupper() and len(ch.upper()) == 1:
        ch = ch.upper()
    return ch


def typo_edit(text: str, op: str, rng: np.random.Generator) -> str:
    """Apply one typo of kind `op` at a random letter; the text is returned as is without letters."""
    letters = [i for i, c in enumerate(text) if is_letter(c)]
    if not letters or (op == "delete" and len(letters) < 2):
        return text
    pos = letters[int(rng.integers(len(letters)))]
    # The letter's cluster ends after its combining marks (vowel signs, viramas, accents): an
    # insertion goes after the cluster and a deletion removes it whole, so no mark is orphaned
    # or moved onto another letter.
    end = pos + 1
    while end < len(text) and unicodedata.category(text[end]).startswith("M"):
        end += 1
    if op == "insert":
        return text[:end] + _draw_like(text, pos, rng) + text[end:]
    if op == "delete":
        return text[:pos] + text[end:]
    if op == "swap":
        nxt = pos + 1
        if nxt < len(text) and is_letter(text[nxt]) and text[nxt] != text[pos]:
            return text[:pos] + text[nxt] + text[pos] + text[nxt + 1:]
        op = "substitute"   # nothing to swap with: a substitution keeps the edit count honest
    if op == "substitute":
        for _ in range(8):  # redraw when the draw equals the original letter
            ch = _draw_like(text, pos, rng)
            if ch != text[pos]:
                return text[:pos] + ch + text[pos + 1:]
    return text


def perturb_typos(text: str, rate: float, rng: np.random.Generator, ops=TYPO_OPS) -> Perturbed:
    units = sum(map(is_letter, text))
    n = stochastic_round(rate * units, rng)
    for _ in range(n):
        text = typo_edit(text, ops[int(rng.integers(len(ops)))], rng)
    return Perturbed(text, n, units)


def _word_units(text: str) -> tuple[list[str], str, str]:
    """(units, joiner, skip reason): words, or characters for Han/kana text without spaces."""
    script = dominant_script(text)
    if script in UNSEGMENTED_SCRIPTS:
        return [], "", f"{script}: no word boundaries"
    if script in CHARACTER_WORD_SCRIPTS:
        return list(text), "", ""
    return text.split(), " ", ""   # punctuation stays attached to its word and moves with it


def perturb_words(text: str, rate: float, rng: np.random.Generator, mode: str) -> Perturbed:
    units, joiner, skipped = _word_units(text)
    if skipped:
        return Perturbed(text, 0, 0, skipped)
    movable = [i for i, u in enumerate(units) if any(map(is_letter, u))]
    n = stochastic_round(rate * len(movable), rng)
    if mode == "dropout":
        n = min(n, len(movable) - 1)
        drop = set(rng.choice(movable, size=n, replace=False).tolist()) if n > 0 else set()
        return Perturbed(joiner.join(u for i, u in enumerate(units) if i not in drop), n, len(movable))
    if n < 2:
        return Perturbed(text, 0, len(movable))
    chosen = rng.choice(movable, size=n, replace=False).tolist()
    moved = list(units)
    for src, dst in zip(chosen, chosen[1:] + chosen[:1]):   # cyclic shift: every chosen unit moves
        moved[dst] = units[src]
    edits = sum(a != b for a, b in zip(moved, units))
    return Perturbed(joiner.join(moved) if edits else text, edits, len(movable))


def _strip_marks(ch: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", base)


def perturb_diacritics(text: str, rate: float, rng: np.random.Generator) -> Perturbed:
    text = unicodedata.normalize("NFC", text)
    marked = [i for i, c in enumerate(text)
              if char_script(c) in DIACRITIC_SCRIPTS and _strip_marks(c) != c and _strip_marks(c)]
    n = stochastic_round(rate * len(marked), rng)
    chosen = set(rng.choice(marked, size=n, replace=False).tolist()) if n else set()
    out = "".join(_strip_marks(c) if i in chosen else c for i, c in enumerate(text))
    return Perturbed(out, n, len(marked))


def perturb_case(text: str, rate: float, rng: np.random.Generator) -> Perturbed:
    cased = [i for i, c in enumerate(text) if len(c.swapcase()) == 1 and c.swapcase() != c]
    n = stochastic_round(rate * len(cased), rng)
    chosen = set(rng.choice(cased, size=n, replace=False).tolist()) if n else set()
    return Perturbed("".join(c.swapcase() if i in chosen else c for i, c in enumerate(text)), n, len(cased))


def perturb_text(text: str, name: str, rate: float, rng: np.random.Generator) -> Perturbed:
    """Perturb one text (see the module table for names and what `rate` counts)."""
    check_perturbation(name, rate)
    if name == "typo":
        return perturb_typos(text, rate, rng)
    if name.startswith("typo-"):
        return perturb_typos(text, rate, rng, ops=(name[5:],))
    if name in ("word-dropout", "word-shuffle"):
        return perturb_words(text, rate, rng, name[5:])
    if name == "diacritics":
        return perturb_diacritics(text, rate, rng)
    return perturb_case(text, rate, rng)


def check_perturbation(name: str, rate: float) -> None:
    if name not in PERTURBATIONS:
        raise ConfigError(f"--perturb: unknown perturbation '{name}'; known: {', '.join(PERTURBATIONS)}")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"--perturb {name}: rate must be in [0, 1], got {rate}")


def parse_perturb_spec(spec: str) -> tuple[str, float]:
    """'NAME:RATE' (e.g. 'typo:0.1') -> (name, rate)."""
    name, _, rate_text = spec.partition(":")
    try:
        rate = float(rate_text)
    except ValueError:
        raise ConfigError(f"--perturb '{spec}': expected NAME:RATE, e.g. typo:0.1") from None
    check_perturbation(name, rate)
    return name, rate


def evaluation_folder_name(name: str | None, rate: float = 0.0) -> str:
    """The folder `mixlingual robustness` writes one evaluation to: 'clean', or '<name>-<rate>' ('typo-0.05')."""
    return "clean" if name is None else f"{name}-{rate:g}"


def query_rng(seed: int, query_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(query_id.encode("utf-8"))])


def perturb_collection(collection: Collection, name: str, rate: float, seed: int = 0) -> Collection:
    """A copy of the collection with every query perturbed; stats in meta['perturbation']."""
    check_perturbation(name, rate)
    queries, edits, units, changed = [], 0, 0, 0
    skipped: dict[str, int] = {}
    for query in collection.queries:
        result = perturb_text(query.text, name, rate, query_rng(seed, query.id))
        queries.append(dataclasses.replace(query, text=result.text))
        edits, units, changed = edits + result.edits, units + result.units, changed + (result.text != query.text)
        if result.skipped:
            skipped[result.skipped] = skipped.get(result.skipped, 0) + 1
    meta = {**collection.meta, "perturbation": {
        "name": name, "rate": rate, "seed": seed, "queries": len(queries), "queries_changed": changed,
        "edits": edits, "units": units, "realized_rate": edits / units if units else 0.0, "skipped": skipped}}
    return Collection(f"{collection.name}+{name}:{rate}", queries, collection.candidates, meta)
