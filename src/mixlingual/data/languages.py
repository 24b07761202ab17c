"""One table of languages: canonical codes, names, scripts, resource levels, "seen" status.

Datasets name languages differently: MLQA, XQuAD and XNLI use ISO 639-1 (`ar`, `zh`), Tatoeba
ISO 639-3 (`ara`, `cmn`), NTREX-128 ISO 639-3 with region or script (`zho-CN`, `srp-Latn`),
SIB-200/FLORES-200 ISO 639-3 + ISO 15924 script (`arb_Arab`, `zho_Hans`). Every code maps here to
one canonical FLORES-200-style code (`language("ar").code == "arb_Arab"`), so results from
different benchmarks can be grouped the same way.

The table lives in `resources/languages.tsv`. Resource levels (`high`/`low`) of the 205 FLORES-200
varieties follow the NLLB paper's classification (NLLB Team 2022, "No Language Left Behind:
Scaling Human-Centered Machine Translation", arXiv:2207.04672, Table 1: a language is low-resource
when fewer than 1M bitext sentence pairs are publicly available). The table was written from the
author's knowledge of that paper, not copied from it: clear cases (major European / East Asian
languages = high; most African, Indic and regional varieties = low) are reliable, borderline
rows may be off (see docs/beyond_retrieval.md). Rows for languages outside FLORES-200 (Tatoeba and
NTREX extras) carry `resource_source == "estimate"`.

"Seen" status is computed, not stored: a language is `trained` when it is among the fine-tuning
languages of a run, `pretrained` when it is among the backbone's pretraining languages
(`XLMR_PRETRAINING`: the 100 CC-100 languages of XLM-R, Conneau et al. 2020, Table 6; the
multilingual-E5 family shares XLM-R's vocabulary and was initialised from it), else `unseen`.

Language-code validation (`is_valid_language`, `language_problem`, used by the JSONL validation
and the loaders): codes are BCP 47 tags built from ISO 639-1 / 639-3 language subtags with
optional script and region subtags (`en`, `zh-Hans`, `pt-BR`, `eng`, `zho_Hans` - underscores are
accepted as in NLLB/FLORES codes). Validity is decided by `langcodes`, which ships the IANA
language subtag registry, so that list stays maintained upstream instead of being copied here.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable

import langcodes

from mixlingual.errors import DataError, MixlingualError

TABLE_RESOURCE = "languages.tsv"
RESOURCE_LEVELS = ("high", "low", "unknown")

# XLM-R's 100 pretraining languages (ISO 639-1 as in the paper; romanized variants such as
# hi_rom have no row of their own and are left out). zh = Simplified, zh-Hant = "zh_classical".
XLMR_PRETRAINING: tuple[str, ...] = tuple("""
af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr
hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps
pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh zh-Hant
""".split())

PRETRAINING: dict[str, tuple[str, ...]] = {
    "xlmr": XLMR_PRETRAINING,
    "me5": XLMR_PRETRAINING,  # multilingual-E5 starts from XLM-R (same 250k sentencepiece vocab)
    "none": (),
}

# The fine-tuning languages of the MLQA-based training recipe (MLQA test cross-lingual files).
MLQA_TRAINING: tuple[str, ...] = ("ar", "de", "es", "hi", "vi", "zh")


@dataclass(frozen=True)
class Language:
    """One row of the language table."""

    code: str            # canonical, e.g. "arb_Arab"
    iso639_3: str        # "arb"
    script: str          # ISO 15924, e.g. "Arab"
    name: str            # English name
    resource: str        # "high" | "low"
    resource_source: str  # "nllb" (NLLB paper) | "estimate" (not in FLORES-200)
    aliases: tuple[str, ...]


class LanguageTable:
    """The rows of `languages.tsv`, indexed by canonical code and by every alias."""

    def __init__(self, rows: Iterable[Language]):
        self.rows: dict[str, Language] = {}
        self._index: dict[str, Language] = {}
        for row in rows:
            self.rows[row.code] = row
            for key in (row.code, *row.aliases):
                if key.lower() in self._index:
                    raise MixlingualError(f"language table: code {key!r} names two rows")
                self._index[key.lower()] = row

    def get(self, code: str) -> Language | None:
        """The row `code` names (canonical code or alias; `-`/`_` and case do not matter), or None."""
        key = code.strip().lower()
        return self._index.get(key) or self._index.get(key.replace("-", "_")) \
            or self._index.get(key.replace("_", "-"))

    def __getitem__(self, code: str) -> Language:
        row = self.get(code)
        if row is None:
            raise MixlingualError(f"unknown language code {code!r} (not in mixlingual's language table)")
        return row

    def __contains__(self, code: str) -> bool:
        return self.get(code) is not None

    def __len__(self) -> int:
        return len(self.rows)


def read_table(path) -> LanguageTable:
    """Read a language TSV (`#` comment lines, then a header row); errors name the line."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [(n, line) for n, line in enumerate(handle, 1) if not line.startswith("#")]
    reader = csv.DictReader((line for _, line in lines), delimiter="\t")
    for (number, _), record in zip(lines[1:], reader):
        missing = [f for f in ("code", "script", "name", "resource") if not record.get(f)]
        if missing:
            raise DataError("empty required column", path=str(path), line=number, field=missing[0])
        if record["resource"] not in RESOURCE_LEVELS:
            raise DataError(f"resource must be one of {RESOURCE_LEVELS}, got {record['resource']!r}",
                            path=str(path), line=number, field="resource")
        aliases = tuple(a for a in (record.get("aliases") or "").split(",") if a)
        rows.append(Language(record["code"], record["iso639_3"], record["script"], record["name"],
                             record["resource"], record.get("resource_source") or "", aliases))
    return LanguageTable(rows)


@lru_cache(maxsize=1)
def table() -> LanguageTable:
    """The packaged language table (read once)."""
    with resources.as_file(resources.files("mixlingual.resources") / TABLE_RESOURCE) as path:
        return read_table(path)


def language(code: str) -> Language:
    """The row for `code`; raises MixlingualError for a code the table does not know."""
    return table()[code]


def canonical(code: str) -> str:
    """The canonical code of `code`, or `code` unchanged when the table does not know it."""
    row = table().get(code)
    return row.code if row else code


def resource_level(code: str) -> str:
    row = table().get(code)
    return row.resource if row else "unknown"


def script_of(code: str) -> str:
    """ISO 15924 script of `code`; for unknown codes the script suffix if there is one."""
    row = table().get(code)
    if row:
        return row.script
    parts = code.replace("-", "_").split("_")
    return parts[1] if len(parts) > 1 and len(parts[1]) == 4 else "unknown"


def seen_status(code: str, trained: Iterable[str] = (), pretraining: str | Iterable[str] = "xlmr") -> str:
    """`trained` | `pretrained` | `unseen` for `code` given fine-tuning and pretraining languages.

    `pretraining` is a key of PRETRAINING or an explicit list of codes.
    """
    if isinstance(pretraining, str):
        if pretraining not in PRETRAINING:
            raise MixlingualError(f"unknown pretraining set {pretraining!r}; known: {sorted(PRETRAINING)}")
        pretraining = PRETRAINING[pretraining]
    target = canonical(code)
    if target in {canonical(c) for c in trained}:
        return "trained"
    if target in {canonical(c) for c in pretraining}:
        return "pretrained"
    return "unseen"


def group_languages(codes: Iterable[str], by: str, *, trained: Iterable[str] = (),
                    pretraining: str | Iterable[str] = "xlmr") -> dict[str, list[str]]:
    """Group `codes` (kept as given) by `resource`, `script` or `seen`; groups and members sorted."""
    trained = tuple(trained)
    keys = {
        "resource": resource_level,
        "script": script_of,
        "seen": lambda c: seen_status(c, trained, pretraining),
    }
    if by not in keys:
        raise MixlingualError(f"cannot group languages by {by!r}; choose one of {sorted(keys)}")
    groups: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        groups[keys[by](code)].append(code)
    return {g: sorted(members) for g, members in sorted(groups.items())}


@lru_cache(maxsize=4096)
def is_valid_language(code: str) -> bool:
    """True when `code` is a well-formed tag whose subtags are all registered."""
    if not isinstance(code, str) or not code or code != code.strip():
        return False
    try:
        return bool(langcodes.tag_is_valid(code.replace("_", "-")))
    except (ValueError, LookupError):
        return False


def language_problem(code) -> str | None:
    """None for a valid code, else a sentence saying what is wrong (for error messages)."""
    if not isinstance(code, str):
        return f"language code must be a string, got {type(code).__name__}"
    if is_valid_language(code):
        return None
    return (f"unknown language code {code!r} (expected an ISO 639-1/639-3 code with optional "
            "script/region, e.g. 'en', 'zh-Hans', 'pt-BR', 'eng_Latn')")
