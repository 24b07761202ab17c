"""NTREX-128 (Federmann et al. 2022): WMT newstest2019's 1997 English sentences in 128 languages.

Layout read (the upstream repository)::

    ROOT/NTREX-128/newstest2019-src.eng.txt          # English source, one sentence per line
    ROOT/NTREX-128/newstest2019-ref.{code}.txt       # one reference per language, line-aligned
    ROOT/NTREX-128/newstest2019-ref-2.spa.txt        # a second Spanish reference
    ROOT/NTREX-additional/newstest2019-ref.{code}.txt  # Swiss German (Bern, Zurich)
    ROOT/DOCUMENT_IDS.tsv                            # line-aligned news document ids

Line i of every file is the same sentence, so the corpus is 1997-way parallel; group = line number.
Languages keep NTREX's codes (`deu`, `zho-CN`, `srp-Latn`); the source is `eng`, the second
Spanish reference `spa-ref2`. `mixlingual.data.languages.canonical` maps them to FLORES-style codes.

By default the three English references (eng-GB/-IN/-US: English "translated" into English) and
the additional Swiss German files are not loaded; the collection's `meta["excluded"]` lists what
was left out and why, and `include_english_refs` / `include_additional` load them.
"""

from __future__ import annotations

import re
from pathlib import Path

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError, DataError

DESCRIPTION = "NTREX-128: WMT newstest2019 in 128 languages, 1997-way line-aligned (bitext retrieval)"
KINDS = ("collection",)
SOURCE_FILE = "newstest2019-src.eng.txt"
_REF = re.compile(r"^newstest2019-ref(-2)?\.(?P<code>[A-Za-z]{3}(?:-[A-Za-z]{2,4})?)\.txt$")
ENGLISH_REFS = ("eng-GB", "eng-IN", "eng-US")


def _root(path) -> Path:
    root = Path(path)
    if not (root / "NTREX-128" / SOURCE_FILE).is_file():
        raise DataError(f"not an NTREX-128 folder: expected NTREX-128/{SOURCE_FILE} below it", path=str(root))
    return root


def language_files(path, include_english_refs: bool = False,
                   include_additional: bool = False) -> tuple[dict[str, Path], dict[str, str]]:
    """(lang -> file, excluded lang -> reason) for the folder at `path`."""
    root = _root(path)
    files: dict[str, Path] = {"eng": root / "NTREX-128" / SOURCE_FILE}
    excluded: dict[str, str] = {}
    folders = [("NTREX-128", True), ("NTREX-additional", include_additional)]
    for folder, wanted in folders:
        if not (root / folder).is_dir():
            continue
        for file in sorted((root / folder).glob("newstest2019-ref*.txt")):
            match = _REF.match(file.name)
            if not match:
                raise DataError("unexpected file name (expected newstest2019-ref[-2].CODE.txt)", path=str(file))
            lang = match["code"] + ("-ref2" if match.group(1) else "")
            if not wanted:
                excluded[lang] = f"in {folder}/ (include_additional=True loads it)"
            elif lang in ENGLISH_REFS and not include_english_refs:
                excluded[lang] = "English reference of an English source (include_english_refs=True loads it)"
            else:
                files[lang] = file
    return files, excluded


def read_lines(file: Path) -> list[str]:
    """The file's lines without line ends (a trailing BOM on line 1 is removed)."""
    text = file.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return [line.rstrip("\r") for line in lines]


def load_collection(path, split: str = "all", langs=None, max_sentences: int | None = None,
                    include_english_refs: bool = False, include_additional: bool = False) -> Collection:
    """Every line of every language as a query and a candidate; group = 1-based line number.

    NTREX has one split (`all`). Empty lines (a missing translation) are skipped and counted
    per language in `meta["empty_lines"]`.
    """
    if split not in ("all", "test"):
        raise ConfigError(f"split: NTREX-128 has a single split; expected 'all', got {split!r}")
    if max_sentences is not None and max_sentences < 1:
        raise ConfigError(f"max_sentences: expected a positive integer, got {max_sentences}")
    files, excluded = language_files(path, include_english_refs, include_additional)
    if langs is not None:
        wanted = [x for x in langs.split(",") if x] if isinstance(langs, str) else list(langs)
        unknown = [lang for lang in wanted if lang not in files]
        if unknown:
            raise ConfigError(f"langs: not available in {path}: {unknown}; available: {sorted(files)}")
        files = {lang: files[lang] for lang in dict.fromkeys(wanted)}
    source_count = len(read_lines(_root(path) / "NTREX-128" / SOURCE_FILE))
    queries, candidates, empty = [], [], {}
    for lang, file in files.items():
        lines = read_lines(file)
        if len(lines) != source_count:
            raise DataError(f"has {len(lines)} lines but the English source has {source_count}; "
                            "NTREX files must be line-aligned", path=str(file))
        limit = max_sentences or len(lines)
        for number, text in enumerate(lines[:limit], 1):
            text = text.strip()
            if not text:
                empty[lang] = empty.get(lang, 0) + 1
                continue
            group = str(number)
            queries.append(Query(id=f"{lang}:{number}", lang=lang, text=text, group=group))
            candidates.append(Candidate(id=f"{lang}:{number}", lang=lang, text=text, groups=(group,)))
    meta = {"source": "ntrex128", "split": "all", "kind": "bitext", "pivot": "eng",
            "excluded": excluded, "empty_lines": empty, "documents": _document_ids(path, max_sentences)}
    return Collection(name="ntrex-bitext", queries=queries, candidates=candidates, meta=meta)


def _document_ids(path, max_sentences: int | None) -> list[str]:
    file = _root(path) / "DOCUMENT_IDS.tsv"
    if not file.is_file():
        return []
    ids = [line.split("\t")[0] for line in read_lines(file)]
    return ids[:max_sentences] if max_sentences else ids
