"""Registry entry `xquad-r`: LAReQA's XQuAD-R (SQuAD JSON with `sentences`/`sentence_breaks`).

One file per language (`ar.json`, `de.json`, ...), 11-way parallel. As in LAReQA:

* queries - every question of every language; `group` = the QA id, shared across languages;
* candidates - every sentence of every paragraph of every language (the given sentence
  boundaries, U+FEFF stripped); a sentence's `groups` are the QA ids whose `answer_start`
  falls inside its break span, so the answer sentence in every language is relevant.

Option `candidate="sentence"` (default) or `"sentence+context"` (the paragraph goes into
`Candidate.context`); `langs` restricts the languages; `paragraphs=N` keeps the first N
paragraphs of every language file (the files are parallel, so the same N everywhere): a smaller,
complete collection - its own questions against its own sentences - for cheap dev curves
during training. `articles="0-11"` keeps only those articles (indices in file order: ranges
and single indices, comma-separated, or a list; XQuAD-R dev has 24): disjoint article subsets
are disjoint question sets in every language, so one can select a recipe and another confirm it.
With both options, `paragraphs=N` keeps the first N paragraphs of the chosen articles.
PATH is the folder or one `<lang>.json`.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.data.report import LoadReport
from mixlingual.data.squad import SquadParagraph, read_squad
from mixlingual.errors import DataError

DESCRIPTION = "XQuAD-R (LAReQA): 11-way parallel answer-sentence retrieval with given sentence boundaries"
KINDS = ("collection",)
CANDIDATE_MODES = ("sentence", "sentence+context")
_INVISIBLE = "\ufeff\u200b"


def language_files(path, langs=None) -> list[tuple[str, Path]]:
    """(language, file) pairs: every `<lang>.json` in a folder, or the one file given."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.glob("*.json"))
    else:
        raise DataError("no such file or folder", path=str(path))
    found = [(f.stem, f) for f in files if langs is None or f.stem in langs]
    if not found:
        raise DataError("no <lang>.json files found" + (f" for languages {langs}" if langs else ""), path=str(path))
    return found


def parse_articles(spec) -> tuple[int, ...]:
    """Article indices of the `articles` option, sorted: "0-11", "0-5,8", 3, or [0, 1, "4-6"].

    Only the syntax is checked here (the number of articles is known once a file is read), so
    sweeps can compare the article sets of two evaluations without touching the data.
    """
    parts = spec if isinstance(spec, (list, tuple)) else [spec]
    indices: set[int] = set()
    for part in parts:
        pieces = part.split(",") if isinstance(part, str) else [part]
        for piece in pieces:
            indices.update(_article_range(piece, spec))
    if not indices:
        raise DataError(f"no article index in {spec!r}", field="articles")
    return tuple(sorted(indices))


def _article_range(piece, spec) -> range:
    """One piece of the `articles` option: an index (7) or an inclusive range ("0-11")."""
    text = str(piece).strip()
    low, dash, high = text.partition("-")
    if not isinstance(piece, (str, int)) or isinstance(piece, bool) or not low.strip().isdigit() \
            or (dash and not high.strip().isdigit()):
        raise DataError(f"expected indices or ranges such as \"0-11\" or \"0-5,8\", got {spec!r}",
                        field="articles")
    first, last = int(low), int(high) if dash else int(low)
    if last < first:
        raise DataError(f"range {text!r} ends before it starts", field="articles")
    return range(first, last + 1)


def check_articles(articles: tuple[int, ...], paras: list[SquadParagraph], path: Path) -> None:
    """Every requested article exists in the file; the error says how many there are."""
    available = max((p.article_index for p in paras), default=-1) + 1
    missing = [a for a in articles if a >= available]
    if missing:
        raise DataError(f"{', '.join(map(str, missing))} out of range; this file has {available} "
                        f"articles (0-{available - 1})", path=str(path), field="articles")


def paragraph_sentences(para: SquadParagraph, path: Path) -> list[tuple[int, str]]:
    """(break start, sentence text) for each given sentence, invisible marks stripped."""
    where = f"data[{para.article_index}].paragraphs[{para.paragraph_index}]"
    if not isinstance(para.sentences, list) or not isinstance(para.sentence_breaks, list):
        raise DataError("missing 'sentences'/'sentence_breaks' (not a LAReQA XQuAD-R file?)",
                        path=str(path), field=where)
    if len(para.sentences) != len(para.sentence_breaks):
        raise DataError(f"{len(para.sentences)} sentences but {len(para.sentence_breaks)} breaks",
                        path=str(path), field=f"{where}.sentence_breaks")
    return [(int(b[0]), s.replace(_INVISIBLE[0], "").replace(_INVISIBLE[1], "").strip())
            for s, b in zip(para.sentences, para.sentence_breaks)]


def load_collection(path, *, candidate: str = "sentence", langs: list[str] | None = None,
                    paragraphs: int | None = None, articles=None, name: str = "xquad-r") -> Collection:
    """The XQuAD-R collection (see the module docstring)."""
    chosen = parse_articles(articles) if articles is not None else None
    if paragraphs is not None and (not isinstance(paragraphs, int) or isinstance(paragraphs, bool) or paragraphs < 1):
        raise DataError(f"paragraphs must be a positive integer, got {paragraphs!r}", field="paragraphs")
    if candidate not in CANDIDATE_MODES:
        raise DataError(f"candidate must be one of {', '.join(CANDIDATE_MODES)}, got {candidate!r}",
                        field="candidate")
    if path is None:
        raise DataError("the xquad-r dataset needs a path (folder of <lang>.json files)")
    report = LoadReport(source=str(path))
    queries, candidates = [], []
    for lang, file in language_files(path, langs):
        paras = list(read_squad(file))
        if chosen is not None:
            check_articles(chosen, paras, file)
            report.note("paragraphs_left_out_by_articles", sum(p.article_index not in chosen for p in paras))
            paras = [p for p in paras if p.article_index in chosen]
        for number, para in enumerate(paras):
            if paragraphs is not None and number >= paragraphs:
                report.note("paragraphs_left_out_by_option")
                continue
            sentences = paragraph_sentences(para, file)
            starts = [start for start, _ in sentences]
            groups: list[list[str]] = [[] for _ in sentences]
            for qa in para.qas:
                queries.append(Query(f"{lang}:{qa.id}", lang, qa.question.strip(), qa.id))
                index = bisect_right(starts, qa.answer_start) - 1 if qa.answer_start is not None else -1
                if index < 0:
                    report.note("questions_without_answer_sentence")
                    continue
                groups[index].append(qa.id)
            for s, (_, text) in enumerate(sentences):
                if not text:
                    report.skip("empty_sentence", f"{file}: paragraph {para.article_index}.{para.paragraph_index}"
                                                  f" sentence {s} is empty")
                    continue
                context = para.context.replace(_INVISIBLE[0], "") if candidate == "sentence+context" else None
                candidates.append(Candidate(f"{lang}:{para.article_index}.{para.paragraph_index}.{s}", lang, text,
                                            tuple(groups[s]), context))
    report.loaded = len(queries) + len(candidates)
    report.log()
    return Collection(name, queries, candidates, {"source": str(path), "candidate": candidate,
                                                  "paragraphs": paragraphs, "articles": list(chosen) if chosen else None,
                                                  "load_report": report.to_dict()})
