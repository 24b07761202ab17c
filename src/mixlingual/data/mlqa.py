"""Registry entry `mlqa`: MLQA (SQuAD v1 JSON files) paired by QA id into parallel items.

MLQA ships one file per (context language, question language) pair; a QA id names the same
instance in every file. Collecting, per id, the questions of every file (by question language)
and the contexts of every file (by context language) recovers both sides in several languages:
in the 16 cross-lingual test files, context-de/question-es and context-es/question-de together
give the question and the passage in German and Spanish.

The positive of a language is the sentence of its context that holds the answer
(`context="sentence"`, default), the whole paragraph (`"paragraph"`), or the sentence with the
paragraph kept in `item.meta["contexts"]` (`"sentence+paragraph"`). Hard negatives are the other
sentences of the same paragraph, nearest first, except those containing the answer (whole tokens
of normalized text, `mixlingual.data.answers`; counted as `negatives_excluded_containing_answer_XX`)
(`negatives=True`, at most `max_negatives` per language).
Sentences are split by `mixlingual.data.sentences` (`splitter`, default ICU as in LAReQA).
Answers with empty text or an offset outside the context cannot locate a sentence. This is
the case for EVERY answer of the MLQA test files distributed with XTREME (answers blanked), so
by default (`on_missing_answer="paragraph"`) such a language gets its whole paragraph as the
positive and no hard negatives; `"skip"` leaves the language out instead. Both are counted in
the report's notes; an item left with no positive at all is skipped and counted.

`german_answers` (PATH of the `mlqa-test-de` TSV or its folder, or "auto": the folder beside
the MLQA folder, when present) restores the German answers of the test files
(`mixlingual.data.mlqa_german`): German passages become answer sentences with in-paragraph hard
negatives, German questions join their items, and rows of no test file become German-only
items. The other languages keep paragraph positives. The report's notes count the positives
of each language by kind (`sentence_positives_de`, `paragraph_positives_es`, ...) and every
German row (`german_*`).

Every item's `meta["parallel_paragraph"]` names its paragraph across translations: QA ids
that share a context (in any language, compared after `normalize_text`, so the German TSV's
copies with stray quotes match their test-file paragraph) belong to one paragraph, transitively.
Several questions ask about one paragraph, and an item's passages in one language are
translations of another item's in a second language even when the two share no text; the
samplers keep items of one parallel paragraph out of each other's batches. The ids come from
every file read (before `langs` drops languages), so a translation outside `langs` still links.

PATH is the dataset root (holding `MLQA_V1/`), a split folder, or one file; `split` picks
"test" (default, training data here) or "dev" under a root.
"""

from __future__ import annotations

import re
from pathlib import Path

from mixlingual.data import mlqa_german
from mixlingual.data.answers import contains_answer
from mixlingual.data.overlap import text_id
from mixlingual.data.records import PARALLEL_PARAGRAPH, ParallelItem
from mixlingual.data.report import ItemList, LoadReport
from mixlingual.data.sentences import cached_sentence_spans, default_splitter, sentence_index_at
from mixlingual.data.squad import read_squad
from mixlingual.errors import DataError

DESCRIPTION = "MLQA SQuAD-JSON files paired by QA id: answer sentence as positive, paragraph sentences as negatives"
KINDS = ("parallel",)
FILE_PATTERN = re.compile(r"^(dev|test)-context-([a-z]+)-question-([a-z]+)\.json$")
CONTEXT_MODES = ("sentence", "paragraph", "sentence+paragraph")
# without max_negatives the report counts positives with fewer than this many hard negatives:
# the shipped MLQA configs train with data.hard_negatives = 3
REPORTED_NEGATIVES = 3


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


def parallel_paragraphs(by_id: dict[str, tuple[dict, dict]], report: LoadReport) -> dict[str, str]:
    """QA id -> its parallel paragraph's id ("mlqa:" + the smallest QA id of the paragraph).

    Union-find over QA ids: two ids sharing a context text (normalized, any language) are joined,
    so an id with contexts de+es and one with vi share a paragraph through an id with de+vi.
    """
    parent = {qa_id: qa_id for qa_id in by_id}

    def root(qa_id: str) -> str:
        while parent[qa_id] != qa_id:
            parent[qa_id] = parent[parent[qa_id]]
            qa_id = parent[qa_id]
        return qa_id

    first_with_text: dict[int, str] = {}
    for qa_id, (_, contexts) in by_id.items():
        for text, _, _ in contexts.values():
            other = first_with_text.setdefault(text_id(text), qa_id)
            a, b = root(qa_id), root(other)
            parent[max(a, b)] = min(a, b)  # the smallest id is the root: the paragraph's id
    paragraph_of = {qa_id: f"mlqa:{root(qa_id)}" for qa_id in by_id}
    report.note("parallel_paragraphs", len(set(paragraph_of.values())))
    return paragraph_of


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
    if start + len(text) > spans[index][1]:
        report.note("answers_crossing_sentence_end")  # kept: the sentence holding the answer's start
    return spans, index


def join_german_answers(option, path, files, by_id, langs, report: LoadReport, splitter: str = "icu") -> None:
    """Apply the `german_answers` option to `by_id` (see `mixlingual.data.mlqa_german`)."""
    splits = {f.name.split("-")[0] for f, _, _ in files}
    if option == "auto" and splits != {"test"}:
        return  # the German answers belong to the test split only
    tsv = mlqa_german.resolve(option, path)
    if tsv is None:
        return
    if splits != {"test"}:
        raise DataError(f"german_answers: the German answers are MLQA test rows, but the files read are "
                        f"{'+'.join(sorted(splits))} files", path=str(tsv), field="german_answers")
    if langs is not None and mlqa_german.LANG not in langs:
        report.note("german_rows_unused_de_not_in_langs")
        return
    mlqa_german.join(by_id, mlqa_german.read_rows(tsv), report, splitter)


def answer_free_negatives(sentences: list[str], answer: str, lang: str, max_negatives, report: LoadReport):
    """`sentences` without those that contain `answer` (`answers.contains_answer`), counting the
    excluded ones and the positives left with fewer than `max_negatives` (default
    REPORTED_NEGATIVES) negatives."""
    kept = [s for s in sentences if not contains_answer(s, answer, lang)]
    if len(kept) < len(sentences):
        report.note(f"negatives_excluded_containing_answer_{lang}", len(sentences) - len(kept))
        report.note(f"positives_with_negatives_excluded_{lang}")
    asked = max_negatives or REPORTED_NEGATIVES
    if len(kept) < asked:
        report.note(f"positives_with_fewer_than_{asked}_negatives_{lang}")
    return kept


def item_passages(contexts: dict, *, context: str, negatives: bool, max_negatives, splitter: str,
                   on_missing_answer: str, report: LoadReport):
    """(positives, hard negatives, paragraphs, positive kind) per language of one QA id.

    The kind is "sentence" (the answer's sentence, other sentences as negatives) or
    "paragraph" (whole paragraph, no negatives: asked for, or the answer locates nothing).
    """
    positives, hard, paragraphs, kinds = {}, {}, {}, {}
    for lang, (text, start, answer) in sorted(contexts.items()):
        found = None if context == "paragraph" else answer_sentence(text, lang, start, answer, splitter, report)
        paragraphs[lang] = text
        if found is None:
            if context != "paragraph" and on_missing_answer == "skip":
                continue
            if context != "paragraph":
                report.note("positives_as_paragraph_for_missing_answer")
            positives[lang], kinds[lang] = text, "paragraph"
            continue
        spans, index = found
        sentences = [text[a:b] for a, b in spans]
        positives[lang], kinds[lang] = sentences[index], "sentence"
        # Nearest sentences first: neighbours of the answer share its topic, so they are the
        # hardest negatives, and `data.hard_negatives = k` takes the first k.
        by_distance = sorted(range(len(sentences)), key=lambda i: (abs(i - index), i))
        others = [sentences[i] for i in by_distance if sentences[i] != sentences[index]]
        if negatives:
            others = answer_free_negatives(others, answer, lang, max_negatives, report)
        if negatives and others:
            hard[lang] = others[:max_negatives]
    return positives, hard, paragraphs, kinds


def load_parallel(path, *, split: str = "test", context: str = "sentence", negatives: bool = True,
                  max_negatives: int | None = None, splitter: str | None = None,
                  langs: list[str] | None = None, on_missing_answer: str = "paragraph",
                  german_answers: str | None = None) -> ItemList:
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
    by_id = collect_by_id(files, report)
    join_german_answers(german_answers, path, files, by_id, langs, report, splitter)
    paragraph_of = parallel_paragraphs(by_id, report)
    for qa_id, (questions, contexts) in by_id.items():
        if langs is not None:
            questions = {k: v for k, v in questions.items() if k in langs}
            contexts = {k: v for k, v in contexts.items() if k in langs}
        positives, hard, paragraphs, kinds = item_passages(
            contexts, context=context, negatives=negatives, max_negatives=max_negatives, splitter=splitter,
            on_missing_answer=on_missing_answer, report=report)
        if not positives or not questions:
            report.skip("no_usable_answer" if questions else "no_question",
                        f"QA id {qa_id}: no positive with a locatable answer" if questions
                        else f"QA id {qa_id}: no question in the selected languages")
            continue
        for lang, kind in kinds.items():
            report.note(f"{kind}_positives_{lang}")
        meta = {"contexts": {k: paragraphs[k] for k in positives}} if context == "sentence+paragraph" else {}
        meta[PARALLEL_PARAGRAPH] = paragraph_of[qa_id]
        items.append(ParallelItem(id=qa_id, queries=dict(sorted(questions.items())), positives=positives,
                                  negatives=hard, group=qa_id, source=source, meta=meta))
    report.loaded = len(items)
    report.log()
    return items
