"""German answers for the MLQA test files (`mlqa` option `german_answers`).

The MLQA test files in this release have blank answers, so their passages can only be whole
paragraphs. The `mlqa-test-de` folder (MLQA test, German context + German question, WITH
answers, as a TSV: Document, Answer, Query, id, doc_lang, qa_lang) restores them for German:
joined by QA id it gives the answer of every German context, so the German passage becomes
the answer sentence (other sentences of the paragraph: hard negatives), and its German
question joins the item, so German X-X pairs exist. Rows whose id is in no test file become
German-only items. The TSV has no answer offset: an answer is placed at the test file's
`answer_start` when that file's answer is not blank and the text is there (in this release
every answer is blank, its `answer_start` 0: no position), else by search: at its first occurrence, or, when it
occurs in several sentences of the paragraph, in the sentence sharing most words with the
German question (ties: a sentence holding it as whole words, then the first;
`mixlingual.data.answers.place_answer`), counted as `german_answers_ambiguous` (and
`german_answers_not_at_first_occurrence` where that is not the first occurrence's sentence).

Every row is accounted for in the load report's notes (`german_*` keys); a malformed row
raises `DataError` naming the file, line and field.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from mixlingual.data.answers import place_answer
from mixlingual.data.report import LoadReport
from mixlingual.data.sentences import cached_sentence_spans
from mixlingual.errors import DataError

logger = logging.getLogger("mixlingual.data")
csv.field_size_limit(1 << 30)

FOLDER = "mlqa-test-de"
FILE = "mlqa_test_de_de.tsv"
COLUMNS = ("Document", "Answer", "Query", "id", "doc_lang", "qa_lang")
LANG = "de"


@dataclass(frozen=True)
class GermanRow:
    """One TSV row: a German question on a German paragraph with its answer text."""

    id: str
    document: str
    answer: str
    question: str
    line: int


def resolve(option, mlqa_path) -> Path | None:
    """The TSV that `german_answers` names: a file, a folder holding FILE, or "auto".

    "auto" looks for a `mlqa-test-de` folder beside the MLQA folder (or beside one of its
    parents, for a split folder or a single file) and returns None when there is none;
    an explicit path that does not exist is an error.
    """
    if option in (None, False, "", "off"):
        return None
    if option == "auto":
        start = Path(mlqa_path).resolve()
        for folder in [start, *start.parents][:4]:
            candidate = folder.parent / FOLDER / FILE
            if candidate.is_file():
                return candidate
        logger.warning("german_answers=auto: no %s/%s beside %s; German passages stay paragraphs",
                       FOLDER, FILE, mlqa_path)
        return None
    path = Path(option)
    if path.is_dir():
        path = path / FILE
    if not path.is_file():
        raise DataError(f"german_answers: no such file (expected the {FILE} of {FOLDER}, a folder holding it, "
                        f"or 'auto')", path=str(path), field="german_answers")
    return path


def _check_header(header, path: Path) -> tuple[dict[str, int], int]:
    """Column name -> index, and the number of fields every row must have."""
    if header is None:
        raise DataError("empty file (expected a header line)", path=str(path), line=1)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"header lacks column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})",
                        path=str(path), line=1, field=missing[0])
    return {name: header.index(name) for name in COLUMNS}, len(header)


def _row(fields: list[str], columns: dict[str, int], width: int, path: Path, line: int) -> GermanRow:
    """A checked row: every field present, id and texts non-empty, both languages German."""
    if len(fields) != width:
        raise DataError(f"expected {width} tab-separated fields, got {len(fields)}", path=str(path), line=line)
    value = {name: fields[index] for name, index in columns.items()}
    for name in ("id", "Document", "Answer", "Query"):
        if not value[name].strip():
            raise DataError("empty value", path=str(path), line=line, field=name)
    for name in ("doc_lang", "qa_lang"):
        if value[name].strip() != LANG:
            raise DataError(f"expected '{LANG}', got {value[name]!r}", path=str(path), line=line, field=name)
    return GermanRow(value["id"].strip(), value["Document"], value["Answer"], value["Query"], line)


def read_rows(path) -> dict[str, GermanRow]:
    """QA id -> row, in file order. The file is CSV-quoted with tabs (a field holding a quote is
    quoted, its quotes doubled); read unquoted, 60 paragraphs and 16 questions keep stray quotes
    and no longer equal their test file's text."""
    path = Path(path)
    rows: dict[str, GermanRow] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        columns, width = _check_header(next(reader, None), path)
        for line, fields in enumerate(reader, 2):
            if not any(f.strip() for f in fields):
                continue
            row = _row(fields, columns, width, path, line)
            if row.id in rows:
                raise DataError(f"duplicate id {row.id} (first on line {rows[row.id].line})",
                                path=str(path), line=line, field="id")
            rows[row.id] = row
    return rows


def locate_answer(context: str, answer: str, start, question: str, splitter: str,
                  report: LoadReport) -> tuple[int | None, str]:
    """(offset of `answer` in `context`, how it was found): the given offset when the text is
    there, else by `place_answer` (the question picks among sentences holding the answer);
    (None, "not_located") when the text is not in `context`. Ambiguous placements are counted."""
    if isinstance(start, int) and 0 <= start and context[start:start + len(answer)] == answer:
        return start, "at_offset"
    placement = place_answer(context, answer, question, cached_sentence_spans(context, LANG, splitter))
    if placement.ambiguous:
        report.note("german_answers_ambiguous")
    if placement.moved_from_first:
        report.note("german_answers_not_at_first_occurrence")
    return (placement.offset, "by_search") if placement.offset is not None else (None, "not_located")


def _join_row(row: GermanRow, questions: dict, contexts: dict, splitter: str, report: LoadReport) -> None:
    """Put `row`'s answer on the item's German context and its question among its queries."""
    if LANG in contexts:
        context, start, test_answer = contexts[LANG]
        if not test_answer:
            start = None   # a blanked answer's answer_start (0 in every test file) is no position
        if context != row.document:
            report.note("german_documents_differing_from_test_context")
    else:
        context, start = row.document, None
        report.note("german_contexts_added_from_tsv")
    offset, how = locate_answer(context, row.answer, start, row.question, splitter, report)
    report.note(f"german_answers_{how}")
    # an answer that cannot be located keeps a blank answer: the item keeps its paragraph positive
    contexts[LANG] = (context, offset, row.answer if offset is not None else "")
    if LANG not in questions:
        questions[LANG] = row.question
        report.note("german_questions_added")
    elif questions[LANG] == row.question:
        report.note("german_questions_already_present")
    else:
        report.note("german_questions_differing_kept_test_file")


def join(by_id: dict[str, tuple[dict, dict]], rows: dict[str, GermanRow], report: LoadReport,
         splitter: str = "icu") -> None:
    """Join German rows into `by_id` (QA id -> (questions, contexts)) in place, counting
    every row (joined, or a new German-only item) and every German context left without a row.
    `splitter` splits paragraphs into sentences as the loader does (for ambiguous answers)."""
    report.note("german_rows_read", len(rows))
    for qa_id, row in rows.items():
        if qa_id in by_id:
            report.note("german_rows_joined")
        else:
            by_id[qa_id] = ({}, {})
            report.note("german_rows_as_new_items")
        _join_row(row, *by_id[qa_id], splitter, report)
    without = sum(1 for qa_id, (_, contexts) in by_id.items() if LANG in contexts and qa_id not in rows)
    if without:
        report.note("german_contexts_without_answer_row", without)
