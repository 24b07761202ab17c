"""Registry entry `mlqa`: MLQA (SQuAD v1 JSON files) paired by QA id into parallel items.

MLQA ships one file per (context language, question language) pair; a QA id names the same
instance in every file. Collecting, per id, the questions of every file (by question language)
and the contexts of every file (by context language) recovers both sides in several languages:
in the 16 cross-lingual test files, context-de/question-es and context-es/question-de together
give the question and the passage in German and Spanish.

The positive of a language is the sentence of its context that holds the answer
(`context="sentence"`, default), the whole paragraph (`"paragraph"`), or the sentence with the
paragraph kept in `item.meta["contexts"]` (`"sentence+paragraph"`). Hard negatives are the other
sentences of the same paragraph (`negatives=True`, at most `max_negatives` per language).
Sentences are split by `mixlingual.data.sentences` (`splitter`, default ICU as in LAReQA).
Answers with empty text or an offset outside the context cannot locate a sentence. This is
the case for EVERY answer of the MLQA test files distributed with XTREME (answers blanked), so
by default (`on_missing_answer="paragraph"`) such a language gets its whole paragraph as the
positive and no hard negatives; `"skip"` leaves the language out instead. Both are counted in
the report's notes; an item left with no positive at all is skipped and counted.

PATH is the dataset root (holding `MLQA_V1/`), a split folder, or one file; `split` picks
"test" (default, training data here) or "dev" under a root.
"""

from __future__ import annotations

import re
from pathlib import Path

from mixlingual.data.records import ParallelItem
from mixlingual.data.report import ItemList, LoadReport
from mixlingual.data.sentences import cached_sentence_spans, default_splitter, sentence_index_at
from mixlingual.data.squad import read_squad
from mixlingual.errors import DataError

DESCRIPTION = "MLQA SQuAD-JSON files paired by QA id: answer sentence as positive, paragraph sentences as negatives"
KINDS = ("parallel",)
FILE_PATTERN = re.compile(r"^(dev|test)-context-([a-z]+)-question-([a-z]+)\.json$")
CONTEXT_MODES = ("sentence", "paragraph", "sentence+paragraph")


def find_files(path, split: str = "test") -> list[tuple[Path, str, str]]:
    """(file, context language, question language) for every MLQA file PATH points at."""
    path = Path(path)
    if path.is_file():
        candidates = [path]
    else:
        folder = next((f for f in (path / "MLQA_V1" / split, path / split, path) if f.is_dir()), None)
        if folder is None:
            raise DataError(f"no MLQA folder here (looked for MLQA_V1/{split}, {split}, or the folder itself)",
                            path=str(path))
        candidates = sorted(folder.glob("*.json"))
    files = []
    for file in candidates:
        match = FILE_PATTERN.match(file.name)
        if match:
            files.append((file, match.group(2), match.group(3)))
        elif path.is_file():
            raise DataError("not an MLQA file name (expected SPLIT-context-XX-question-YY.json)", path=str(file))
    if not files:
        raise DataError("no MLQA files (SPLIT-context-XX-question-YY.json) found", path=str(path))
    return files


def collect_by_id(files, report: LoadReport):
    """QA id -> ({question lang: question}, {context lang: (context, answer_start, answer_text)})."""
    by_id: dict[str, tuple[dict, dict]] = {}
    for file, context_lang, question_lang in files:
        for para in read_squad(file):
            for qa in para.qas:
                questions, contexts = by_id.setdefault(qa.id, ({}, {}))
                questions[question_lang] = qa.question
                contexts[context_lang] = (para.context, qa.answer_start, qa.answer_text)
    report.note("files", len(files))
    return by_id


def answer_sentence(context: str, lang: str, start, text: str, splitter: str, report: LoadReport):
    """(sentence spans, index of the answer's sentence) or None when the answer locates nothing."""
    if not text.strip():
        report.note("answers_with_empty_text")
        return None
    if start is None or not 0 <= start < len(context):
        report.note("answers_with_offset_outside_context")
        return None
    if context[start:start + len(text)] != text:
        report.note("answers_with_text_not_at_offset")
    spans = cached_sentence_spans(context, lang, splitter)
    index = sentence_index_at(spans, start)
    if index is None:
        report.note("answers_outside_any_sentence")
        return None
    return spans, index


def load_parallel(path, *, split: str = "test", context: str = "sentence", negatives: bool = True,
                  max_negatives: int | None = None, splitter: str | None = None,
                  langs: list[str] | None = None, on_missing_answer: str = "paragraph") -> ItemList:
    """Parallel items from MLQA (see the module docstring for every option)."""
    if context not in CONTEXT_MODES:
        raise DataError(f"context must be one of {', '.join(CONTEXT_MODES)}, got {context!r}", field="context")
    if on_missing_answer not in ("paragraph", "skip"):
        raise DataError(f"on_missing_answer must be 'paragraph' or 'skip', got {on_missing_answer!r}",
                        field="on_missing_answer")
    if path is None:
        raise DataError("the mlqa dataset needs a path (dataset root, split folder or file)")
    splitter = splitter or default_splitter()
    report = LoadReport(source=str(path))
    files = [f for f in find_files(path, split) if langs is None or (f[1] in langs or f[2] in langs)]
    source = "mlqa/" + "+".join(sorted({f.name.split("-")[0] for f, _, _ in files}))  # the files' own split
    items = ItemList(report=report)
    for qa_id, (questions, contexts) in collect_by_id(files, report).items():
        if langs is not None:
            questions = {k: v for k, v in questions.items() if k in langs}
            contexts = {k: v for k, v in contexts.items() if k in langs}
        positives, hard, paragraphs = {}, {}, {}
        for lang, (text, start, answer) in sorted(contexts.items()):
            found = None if context == "paragraph" else answer_sentence(text, lang, start, answer, splitter, report)
            if found is None:
                if context != "paragraph" and on_missing_answer == "skip":
                    continue
                if context != "paragraph":
                    report.note("positives_as_paragraph_for_missing_answer")
                positives[lang] = paragraphs[lang] = text
                continue
            spans, index = found
            sentences = [text[a:b] for a, b in spans]
            positives[lang], paragraphs[lang] = sentences[index], text
            others = [s for i, s in enumerate(sentences) if i != index and s != sentences[index]]
            if negatives and others:
                hard[lang] = others[:max_negatives]
        if not positives or not questions:
            report.skip("no_usable_answer" if questions else "no_question",
                        f"QA id {qa_id}: no positive with a locatable answer" if questions
                        else f"QA id {qa_id}: no question in the selected languages")
            continue
        meta = {"contexts": paragraphs} if context == "sentence+paragraph" else {}
        items.append(ParallelItem(id=qa_id, queries=dict(sorted(questions.items())), positives=positives,
                                  negatives=hard, group=qa_id, source=source, meta=meta))
    report.loaded = len(items)
    report.log()
    return items
