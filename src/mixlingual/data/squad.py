"""Reading SQuAD v1-style JSON (MLQA, XQuAD, LAReQA's XQuAD-R) into plain paragraphs.

`read_squad` checks the structure it relies on and raises `DataError` naming the file and the
JSON path of anything missing, so the dataset loaders above it only deal with meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mixlingual.errors import DataError


@dataclass
class SquadQA:
    id: str
    question: str
    answer_start: int | None  # None when the QA has no answer
    answer_text: str


@dataclass
class SquadParagraph:
    title: str
    context: str
    qas: list[SquadQA]
    article_index: int
    paragraph_index: int
    sentences: list[str] | None = None            # LAReQA files only
    sentence_breaks: list[list[int]] | None = None  # LAReQA files only
    extra: dict = field(default_factory=dict)


def _need(obj, key: str, kind, path: Path, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"missing key '{key}' at {where}", path=str(path), field=f"{where}.{key}")
    value = obj[key]
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(f"expected {expected} at {where}.{key}, got {type(value).__name__}",
                        path=str(path), field=f"{where}.{key}")
    return value


def read_squad(path) -> Iterator[SquadParagraph]:
    """Yield the paragraphs of a SQuAD v1 JSON file with their QAs (first answer of each)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            root = json.load(handle)
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"not a valid JSON file: {err}", path=str(path)) from None
    for a, article in enumerate(_need(root, "data", list, path, "$")):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, para in enumerate(_need(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = _need(para, "context", str, path, where)
            qas = []
            for q, qa in enumerate(_need(para, "qas", list, path, where)):
                qwhere = f"{where}.qas[{q}]"
                answers = qa.get("answers") or [] if isinstance(qa, dict) else []
                first = answers[0] if answers and isinstance(answers[0], dict) else {}
                start = first.get("answer_start")
                qas.append(SquadQA(id=str(_need(qa, "id", (str, int), path, qwhere)),
                                   question=_need(qa, "question", str, path, qwhere),
                                   answer_start=start if isinstance(start, int) else None,
                                   answer_text=str(first.get("text", ""))))
            yield SquadParagraph(title, context, qas, a, p, para.get("sentences"), para.get("sentence_breaks"))
