"""SIB-200 (Adelani et al. 2023): FLORES-200 sentences in 205 language varieties with topic labels.

Layout read (the upstream repository's `data/annotated/`)::

    ROOT/data/annotated/{lang}/{train,dev,test}.tsv    # header "index_id<TAB>category<TAB>text"
    ROOT/data/annotated/{lang}/labels.txt              # one topic per line

`ROOT` may also be the `annotated` folder itself. `index_id` is the sentence's index in
FLORES-200, so the same id is the same sentence in every language: the corpus is 205-way
parallel. Languages are NLLB codes (`eng_Latn`, `zho_Hans`).

As a collection (`sib200-bitext`) every sentence of every language is both a query and a
candidate, with `group = index_id`: a query's relevant candidates are its translations.
`read_topic_split` gives the labelled rows the topic probe uses.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from mixlingual.data.records import Candidate, Collection, ParallelItem, Query
from mixlingual.errors import ConfigError, DataError

DESCRIPTION = "SIB-200 / FLORES-200: 205-way parallel sentences with topic labels (bitext retrieval, topic probe)"
KINDS = ("collection", "parallel")
SPLITS = ("train", "dev", "test")
HEADER = ["index_id", "category", "text"]


@dataclass(frozen=True)
class TopicRow:
    """One labelled sentence: FLORES index id, topic label, text."""

    index_id: str
    category: str
    text: str


def annotated_dir(path) -> Path:
    """The folder holding one sub-folder per language (accepts the dataset root or that folder)."""
    root = Path(path)
    for candidate in (root / "data" / "annotated", root):
        if (candidate / "eng_Latn").is_dir():
            return candidate
    raise DataError("not a SIB-200 folder: expected data/annotated/eng_Latn/ below it", path=str(root))


def available_languages(path) -> list[str]:
    """Language folders present (sorted)."""
    return sorted(p.name for p in annotated_dir(path).iterdir() if p.is_dir())


def read_topic_split(path, lang: str, split: str) -> list[TopicRow]:
    """Rows of `{lang}/{split}.tsv`, in file order; a malformed row raises DataError naming its line."""
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {SPLITS}, got {split!r}")
    file = annotated_dir(path) / lang / f"{split}.tsv"
    if not file.is_file():
        raise DataError(f"missing file (language {lang!r}, split {split!r})", path=str(file))
    rows: list[TopicRow] = []
    seen: set[str] = set()
    with open(file, encoding="utf-8", newline="") as handle:
        # FLORES sentences contain quotes; the files are not CSV-quoted, so disable quoting.
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != HEADER:
            raise DataError(f"expected header {HEADER}, got {header}", path=str(file), line=1)
        for number, fields in enumerate(reader, 2):
            if len(fields) != 3:
                raise DataError(f"expected 3 tab-separated fields, got {len(fields)}", path=str(file), line=number)
            index_id, category, text = (f.strip() for f in fields)
            if not index_id.isdigit():
                raise DataError(f"index_id must be an integer, got {index_id!r}", path=str(file),
                                line=number, field="index_id")
            if not text:
                raise DataError("empty text", path=str(file), line=number, field="text")
            if index_id in seen:
                raise DataError(f"duplicate index_id {index_id}", path=str(file), line=number, field="index_id")
            seen.add(index_id)
            rows.append(TopicRow(index_id, category, text))
    return rows


def _resolve_langs(path, langs) -> list[str]:
    present = available_languages(path)
    if langs is None:
        return present
    if isinstance(langs, str):
        langs = [x for x in langs.split(",") if x]
    missing = [lang for lang in langs if lang not in present]
    if missing:
        raise ConfigError(f"langs: not in {annotated_dir(path)}: {missing} (codes are NLLB codes, e.g. eng_Latn)")
    return list(dict.fromkeys(langs))


def _split_names(split: str) -> list[str]:
    names = [s for s in split.split("+") if s]
    bad = [s for s in names if s not in SPLITS]
    if bad or not names:
        raise ConfigError(f"split: expected one of {SPLITS} or several joined by '+', got {split!r}")
    return names


def read_parallel_rows(path, split: str = "dev", langs=None,
                       max_sentences: int | None = None) -> dict[str, dict[str, TopicRow]]:
    """lang -> {index_id -> row}, checked to hold the same index ids in every language.

    `max_sentences` keeps the first N index ids of the first language's file order (deterministic).
    """
    chosen = _resolve_langs(path, langs)
    if max_sentences is not None and max_sentences < 1:
        raise ConfigError(f"max_sentences: expected a positive integer, got {max_sentences}")
    table: dict[str, dict[str, TopicRow]] = {}
    for lang in chosen:
        rows = [row for s in _split_names(split) for row in read_topic_split(path, lang, s)]
        table[lang] = {row.index_id: row for row in rows}
    reference_lang = chosen[0]
    order = list(table[reference_lang])
    for lang in chosen[1:]:
        if set(table[lang]) != set(order):
            diff = sorted(set(order) ^ set(table[lang]))[:5]
            raise DataError(f"index ids of {lang} differ from those of {reference_lang} (e.g. {diff}); "
                            "SIB-200 languages must be parallel", path=str(annotated_dir(path) / lang))
    keep = order[:max_sentences] if max_sentences else order
    return {lang: {i: rows[i] for i in keep} for lang, rows in table.items()}


def load_collection(path, split: str = "dev", langs=None, max_sentences: int | None = None) -> Collection:
    """Every sentence of every language as a query and as a candidate; group = FLORES index id."""
    table = read_parallel_rows(path, split, langs, max_sentences)
    queries, candidates = [], []
    for lang, rows in table.items():
        for index_id, row in rows.items():
            queries.append(Query(id=f"{lang}:{index_id}", lang=lang, text=row.text, group=index_id))
            candidates.append(Candidate(id=f"{lang}:{index_id}", lang=lang, text=row.text, groups=(index_id,)))
    first = next(iter(table.values()))
    meta = {"source": "sib200", "split": split, "kind": "bitext", "pivot": "eng_Latn",
            "topics": {i: row.category for i, row in first.items()}}
    return Collection(name=f"sib200-bitext-{split}", queries=queries, candidates=candidates, meta=meta)


def load_parallel(path, split: str = "train", langs=None, max_sentences: int | None = None) -> list[ParallelItem]:
    """One ParallelItem per FLORES sentence: the sentence is query and positive in every language.

    Only for bitext-style training; never train on the split you evaluate on.
    """
    table = read_parallel_rows(path, split, langs, max_sentences)
    first = next(iter(table.values()))
    return [ParallelItem(id=f"sib200:{i}", queries={lang: rows[i].text for lang, rows in table.items()},
                         positives={lang: rows[i].text for lang, rows in table.items()},
                         source="sib200", meta={"topic": first[i].category, "split": split})
            for i in first]
