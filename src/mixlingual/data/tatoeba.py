"""Registry entry `tatoeba`: the LASER Tatoeba bitext test set as a retrieval collection.

Layout (as in LASER's `data/tatoeba/v1`): for each language xxx, `tatoeba.xxx-eng.xxx` and
`tatoeba.xxx-eng.eng`, line-aligned (line i of one translates line i of the other; the English
side differs per pair). Codes are ISO 639-3 as in the file names.

Each line pair becomes one group `xxx:i` with a query and a candidate. `direction="xx-en"`
(default) makes the xxx sentences queries and the English ones candidates, `"en-xx"` the
reverse, `"both"` adds both. English sentences of different pairs get different ids
(`eng@xxx:i`) but share the language `eng`, so loading many pairs pools all English
candidates; the standard LASER protocol scores one pair at a time (`langs=["deu"]`).
PATH is the folder (or one of the two files of a pair); `langs` selects pairs.
"""

from __future__ import annotations

import re
from pathlib import Path

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.data.report import LoadReport
from mixlingual.errors import DataError

DESCRIPTION = "LASER Tatoeba bitext (tatoeba.xxx-eng.{xxx,eng}, line-aligned): bitext retrieval collection"
KINDS = ("collection",)
DIRECTIONS = ("xx-en", "en-xx", "both")
_PAIR_FILE = re.compile(r"^tatoeba\.([a-z]{2,3})-eng\.\1$")


def find_pairs(path, langs=None) -> list[tuple[str, Path, Path]]:
    """(xxx, xxx file, eng file) for every pair under PATH (a folder, or a file of one pair)."""
    path = Path(path)
    if path.is_file():
        lang = path.name.split(".")[1].split("-")[0]
        candidates = [path.parent / f"tatoeba.{lang}-eng.{lang}"]
    elif path.is_dir():
        candidates = sorted(path.glob("tatoeba.*-eng.*"))
    else:
        raise DataError("no such file or folder", path=str(path))
    pairs = []
    for file in candidates:
        match = _PAIR_FILE.match(file.name)
        if not match or (langs is not None and match.group(1) not in langs):
            continue
        english = file.with_name(f"tatoeba.{match.group(1)}-eng.eng")
        if not english.is_file():
            raise DataError(f"the English side {english.name} of this pair is missing", path=str(file))
        pairs.append((match.group(1), file, english))
    if not pairs:
        raise DataError("no tatoeba.xxx-eng.xxx files found" + (f" for {langs}" if langs else ""), path=str(path))
    return pairs


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8: {err}", path=str(path)) from None


def load_collection(path, *, langs: list[str] | None = None, direction: str = "xx-en",
                    name: str = "tatoeba") -> Collection:
    """The Tatoeba collection (see the module docstring)."""
    if direction not in DIRECTIONS:
        raise DataError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}", field="direction")
    if path is None:
        raise DataError("the tatoeba dataset needs a path (folder of tatoeba.xxx-eng.* files)")
    report = LoadReport(source=str(path))
    queries, candidates = [], []
    for lang, own_file, eng_file in find_pairs(path, langs):
        own, eng = _read_lines(own_file), _read_lines(eng_file)
        if len(own) != len(eng):
            raise DataError(f"{len(own)} lines but the English side {eng_file.name} has {len(eng)}: "
                            "the files are not line-aligned", path=str(own_file))
        for i, (text, english) in enumerate(zip(own, eng)):
            text, english = text.strip(), english.strip()
            if not text or not english:
                report.skip("empty_line", f"{own_file}:{i + 1}: empty sentence on one side")
                continue
            group = f"{lang}:{i}"
            sides = {"xx-en": [(lang, text, "eng", english)], "en-xx": [("eng", english, lang, text)],
                     "both": [(lang, text, "eng", english), ("eng", english, lang, text)]}[direction]
            for q_lang, q_text, c_lang, c_text in sides:
                queries.append(Query(_id(q_lang, lang, i), q_lang, q_text, group))
                candidates.append(Candidate(_id(c_lang, lang, i), c_lang, c_text, (group,)))
    report.loaded = len(queries) + len(candidates)
    report.log()
    return Collection(name, queries, candidates, {"source": str(path), "direction": direction,
                                                  "load_report": report.to_dict()})


def _id(side_lang: str, pair_lang: str, line: int) -> str:
    return f"{pair_lang}:{line}" if side_lang == pair_lang else f"eng@{pair_lang}:{line}"
