"""Registry entry `mlqa-r`: MLQA-R, LAReQA's answer-sentence retrieval pool built from MLQA dev.

Built the LAReQA way from the same-language files `dev-context-X-question-X.json`:

* queries - every question of every language (group = QA id, shared across languages);
* candidates - every sentence of every paragraph of every language, split by
  `mixlingual.data.sentences` (ICU by default, as LAReQA);
* relevance - each QA's answer sentence (the one holding `answer_start`) gets the QA id in its
  `groups`, so a question's relevant candidates are its answer sentence in every language
  version of the instance (2-4 languages in MLQA).

The counts this gives on MLQA dev are within 1% of LAReQA's published ones (see
docs/data.md). Options: `splitter` ("icu" | "sentencex" | "pysbd", default ICU when installed),
`candidate="sentence"|"sentence+context"` (the paragraph goes to `Candidate.context`),
`langs`, `dedup` (merge identical sentences of one language into one candidate, uniting
their groups; LAReQA does not). PATH: the MLQA root, its dev folder, or one X-X file.
"""

from __future__ import annotations

from mixlingual.data.mlqa import find_files
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.data.report import LoadReport
from mixlingual.data.sentences import default_splitter, sentence_index_at, sentence_spans
from mixlingual.data.squad import read_squad
from mixlingual.errors import DataError

DESCRIPTION = "MLQA-R (LAReQA): answer-sentence retrieval over MLQA dev, sentences split with ICU"
KINDS = ("collection",)
CANDIDATE_MODES = ("sentence", "sentence+context")


def load_collection(path, *, splitter: str | None = None, candidate: str = "sentence",
                    langs: list[str] | None = None, dedup: bool = False, name: str = "mlqa-r") -> Collection:
    """The MLQA-R collection (see the module docstring)."""
    if candidate not in CANDIDATE_MODES:
        raise DataError(f"candidate must be one of {', '.join(CANDIDATE_MODES)}, got {candidate!r}",
                        field="candidate")
    if path is None:
        raise DataError("the mlqa-r dataset needs a path (MLQA root, dev folder or a dev-context-X-question-X file)")
    splitter = splitter or default_splitter()
    report = LoadReport(source=str(path))
    files = [(f, c) for f, c, q in find_files(path, "dev") if c == q and (langs is None or c in langs)]
    if not files:
        raise DataError("no same-language MLQA dev files (dev-context-X-question-X.json) found", path=str(path))
    queries, candidates = [], []
    for file, lang in files:
        by_text: dict[str, int] = {}       # sentence text -> candidate index (for dedup)
        by_context: dict[str, tuple[list, list[int]]] = {}  # paragraph -> (spans, candidate indices)
        for para in read_squad(file):
            if para.context not in by_context:  # a paragraph repeated in the file is one paragraph
                spans = sentence_spans(para.context, lang, splitter)
                indices = []
                for s, (a, b) in enumerate(spans):
                    text = para.context[a:b]
                    if dedup and text in by_text:
                        report.note("duplicate_sentences_merged")
                        indices.append(by_text[text])
                        continue
                    context = para.context if candidate == "sentence+context" else None
                    candidates.append(Candidate(f"{lang}:{para.article_index}.{para.paragraph_index}.{s}",
                                                lang, text, (), context))
                    by_text.setdefault(text, len(candidates) - 1)
                    indices.append(len(candidates) - 1)
                by_context[para.context] = (spans, indices)
            spans, indices = by_context[para.context]
            for qa in para.qas:
                queries.append(Query(f"{lang}:{qa.id}", lang, qa.question.strip(), qa.id))
                index = _answer_sentence(para.context, spans, qa.answer_start, report)
                if index is None:
                    continue
                target = candidates[indices[index]]
                if qa.id not in target.groups:
                    target.groups = (*target.groups, qa.id)
    report.loaded = len(queries) + len(candidates)
    report.log()
    return Collection(name, queries, candidates, {"source": str(path), "splitter": splitter,
                                                  "candidate": candidate, "load_report": report.to_dict()})


def _answer_sentence(context: str, spans, start, report: LoadReport) -> int | None:
    """Index (within the paragraph) of the sentence holding the answer, or None (counted)."""
    if start is None or not 0 <= start < len(context):
        report.note("answers_with_offset_outside_context")
        return None
    index = sentence_index_at(spans, start)
    if index is None:
        report.note("answers_outside_any_sentence")
    return index
