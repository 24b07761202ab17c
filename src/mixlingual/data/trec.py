"""Registry entry `trec`: a user's TREC-style collection (MIRACL-like): topics, qrels, corpus.

Files (found in the PATH folder by name, or given as options `topics=`, `qrels=`, `corpus=`):

* topics - `topics.tsv` / `queries.tsv` (`qid<TAB>text`, optional third column: language)
  or TREC topic markup (`topics.txt` / `*.xml`: `<top><num>..<title>..<desc>..</top>`;
  `field="title"|"desc"` picks the text);
* qrels - `qrels.txt` / `qrels.tsv` (`qid 0 docid grade`; grade > 0 is relevant);
* corpus - `corpus.jsonl` (`{"_id", "title"?, "text", "lang"?}`, BEIR/MIRACL style) or
  `corpus.tsv` / `collection.tsv` (`docid<TAB>text` or `docid<TAB>title<TAB>text`).

Language: a `lang`/`language` field (JSONL) or third topic column, else the `lang` option
(required then). A document's `groups` are the qids that judge it relevant; graded judgements
are kept in `Collection.meta["qrels"]` ({qid: {docid: grade}}) for graded metrics. Judged
documents missing from the corpus and qids without topics are counted in the load report.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

from mixlingual.data.languages import language_problem
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.data.report import LoadReport
from mixlingual.errors import DataError

DESCRIPTION = "generic TREC-style collection: topics (TSV or TREC markup) + qrels + corpus (JSONL/TSV)"
KINDS = ("collection",)
_NAMES = {"topics": ("topics.tsv", "queries.tsv", "topics.txt", "topics.xml"),
          "qrels": ("qrels.txt", "qrels.tsv", "qrels"),
          "corpus": ("corpus.jsonl", "corpus.tsv", "collection.tsv")}
_TOP = re.compile(r"<top>(.*?)</top>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<(num|title|desc|narr)>(.*?)(?=<(?:num|title|desc|narr|/top)>|$)", re.DOTALL | re.IGNORECASE)
_LABEL = re.compile(r"^\s*(?:Number|Topic|Description|Narrative)\s*:\s*", re.IGNORECASE)
csv.field_size_limit(1 << 30)


def _locate(folder: Path | None, kind: str, given) -> Path:
    if given is not None:
        path = Path(given)
    elif folder is not None and folder.is_dir():
        path = next((folder / n for n in _NAMES[kind] if (folder / n).is_file()), None)
        if path is None:
            raise DataError(f"no {kind} file (looked for {', '.join(_NAMES[kind])})", path=str(folder))
    else:
        raise DataError(f"give the {kind} file (option {kind}=...) or a folder holding it")
    if not path.is_file():
        raise DataError("file not found", path=str(path))
    return path


def _checked_lang(lang, path: Path, line: int | None) -> str:
    if lang is None:
        raise DataError("no language: add a lang column/field or pass the lang option", path=str(path), line=line)
    problem = language_problem(lang)
    if problem:
        raise DataError(problem, path=str(path), line=line, field="lang")
    return lang


def read_topics(path: Path, lang: str | None, field: str = "title") -> list[Query]:
    text = path.read_text(encoding="utf-8")
    queries = []
    if "<top>" in text.lower():
        for block in _TOP.findall(text):
            tags = {k.lower(): _LABEL.sub("", " ".join(v.split())) for k, v in _TAG.findall(block)}
            if "num" not in tags or not tags.get(field):
                raise DataError(f"a <top> block lacks <num> or <{field}>", path=str(path), field=field)
            queries.append(Query(tags["num"], _checked_lang(lang, path, None), tags[field], tags["num"]))
        return queries
    for number, row in enumerate(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not row[1].strip():
            raise DataError("expected qid<TAB>text[<TAB>lang]", path=str(path), line=number)
        row_lang = row[2].strip() if len(row) > 2 and row[2].strip() else lang
        queries.append(Query(row[0].strip(), _checked_lang(row_lang, path, number), row[1].strip(), row[0].strip()))
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4 or not re.fullmatch(r"-?\d+", parts[3]):
                raise DataError("expected 'qid iteration docid grade' with an integer grade", path=str(path), line=number)
            qrels[parts[0]][parts[2]] = int(parts[3])
    return dict(qrels)


def iter_corpus(path: Path, lang: str | None):
    """Yield (docid, lang, text) from a JSONL or TSV corpus, streaming."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if path.suffix == ".jsonl":
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"invalid JSON: {err}", path=str(path), line=number) from None
                if not isinstance(doc, dict) or "_id" not in doc or not str(doc.get("text", "")).strip():
                    raise DataError("expected an object with '_id' and non-empty 'text'", path=str(path), line=number)
                title = str(doc.get("title") or "").strip()
                text = f"{title}\n{doc['text'].strip()}" if title else doc["text"].strip()
                doc_lang = doc.get("lang") or doc.get("language") or lang
                yield str(doc["_id"]), _checked_lang(doc_lang, path, number), text
            else:
                cells = line.rstrip("\n").split("\t")
                if len(cells) < 2 or not cells[-1].strip():
                    raise DataError("expected docid<TAB>[title<TAB>]text", path=str(path), line=number)
                text = "\n".join(c.strip() for c in cells[1:] if c.strip())
                yield cells[0].strip(), _checked_lang(lang, path, number), text


def load_collection(path=None, *, topics=None, qrels=None, corpus=None, lang: str | None = None,
                    field: str = "title", name: str | None = None) -> Collection:
    """A TREC-style collection (see the module docstring)."""
    folder = Path(path) if path is not None else None
    topics_path, qrels_path = _locate(folder, "topics", topics), _locate(folder, "qrels", qrels)
    corpus_path = _locate(folder, "corpus", corpus)
    report = LoadReport(source=str(folder or corpus_path))
    queries = read_topics(topics_path, lang, field)
    judgements = read_qrels(qrels_path)
    relevant_to: dict[str, list[str]] = defaultdict(list)
    for qid, docs in judgements.items():
        for docid, grade in docs.items():
            if grade > 0:
                relevant_to[docid].append(qid)
    candidates, seen = [], set()
    for docid, doc_lang, text in iter_corpus(corpus_path, lang):
        if docid in seen:
            raise DataError(f"document id {docid!r} appears twice", path=str(corpus_path))
        seen.add(docid)
        candidates.append(Candidate(docid, doc_lang, text, tuple(relevant_to.get(docid, ()))))
    missing = sum(d not in seen for d in relevant_to)
    if missing:
        report.note("judged_relevant_documents_missing_from_corpus", missing)
    qids = {q.id for q in queries}
    if any(q not in qids for q in judgements):
        report.note("judged_qids_without_topic", sum(q not in qids for q in judgements))
    report.loaded = len(queries) + len(candidates)
    report.log()
    return Collection(name or (folder.name if folder else "trec"), queries, candidates,
                      {"source": str(folder or corpus_path), "qrels": judgements, "load_report": report.to_dict()})
