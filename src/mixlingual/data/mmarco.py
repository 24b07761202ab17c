"""Registry entry `mmarco`: mMARCO (MS MARCO passage ranking machine-translated) as parallel items.

mMARCO keeps MS MARCO's query and passage ids in every language, so an item is one training
query id with its query and its first relevant passage in every selected language (and, with
`negatives=k`, up to k hard negatives from the training triples). Two sources:

* `source="ir_datasets"`: datasets `mmarco/v2/<lang>/train` (PATH is ignored or None); queries
  are streamed in lock-step across languages (the files share one order; a mismatch raises
  `DataError`), passages are fetched by id from each language's docstore.
* `source="tsv"`: PATH is a folder with one sub-folder per language holding
  `queries.train.tsv` (or `queries.tsv`: `qid<TAB>text`), `qrels.train.tsv` (or `qrels.tsv`:
  `qid 0 pid rel`, TREC or TSV), `collection.tsv` (`pid<TAB>text`) and optionally
  `triples.train.ids.tsv` (`qid<TAB>pos pid<TAB>neg pid`). Only the passages the selected
  queries need are kept while the collection streams by.

`source="auto"` picks "tsv" when PATH is a folder, else "ir_datasets". `max_items` bounds the
number of items (the stream stops there). Queries without a judged passage are counted.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from mixlingual.data.records import ParallelItem
from mixlingual.data.report import ItemList, LoadReport
from mixlingual.errors import DataError

DESCRIPTION = "mMARCO (ir_datasets mmarco/v2/<lang>/train or per-language TSV folders), parallel by shared ids"
KINDS = ("parallel",)
csv.field_size_limit(1 << 30)
# mMARCO v2 calls Dutch "dt"; items use the ISO 639-1 code
ITEM_LANGUAGE = {"dt": "nl"}


def _item_lang(lang: str) -> str:
    return ITEM_LANGUAGE.get(lang, lang)


def _first(folder: Path, names: tuple[str, ...], required: bool = True) -> Path | None:
    found = next((folder / n for n in names if (folder / n).is_file()), None)
    if found is None and required:
        raise DataError(f"none of {', '.join(names)} found", path=str(folder))
    return found


def _tsv(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if row and "".join(row).strip():
                yield number, row


def _read_pairs(path: Path) -> dict[str, str]:
    out = {}
    for number, row in _tsv(path):
        if len(row) < 2:
            raise DataError("expected id<TAB>text", path=str(path), line=number)
        out[row[0]] = row[1]
    return out


def _read_qrels(path: Path) -> dict[str, list[str]]:
    positives: dict[str, list[str]] = defaultdict(list)
    for number, row in _tsv(path):
        cells = row[0].split() if len(row) == 1 else row
        if len(cells) != 4:
            raise DataError("expected 'qid 0 pid relevance'", path=str(path), line=number)
        if cells[3].strip() not in ("0", ""):
            positives[cells[0]].append(cells[2])
    return dict(positives)


def _tsv_items(folder: Path, langs: list[str], max_items, negatives: int, report: LoadReport) -> list[ParallelItem]:
    dirs = {lang: folder / lang for lang in langs}
    for lang, d in dirs.items():
        if not d.is_dir():
            raise DataError(f"no sub-folder for language '{lang}'", path=str(d))
    first = dirs[langs[0]]
    qrels = _read_qrels(_first(first, ("qrels.train.tsv", "qrels.tsv", "qrels.train.txt")))
    hard: dict[str, list[str]] = defaultdict(list)
    triples = _first(first, ("triples.train.ids.tsv", "triples.train.ids.small.tsv"), required=False)
    if negatives and triples:
        for number, row in _tsv(triples):
            if len(row) != 3:
                raise DataError("expected qid<TAB>pos pid<TAB>neg pid", path=str(triples), line=number)
            if len(hard[row[0]]) < negatives and row[2] not in hard[row[0]]:
                hard[row[0]].append(row[2])
    queries = {lang: _read_pairs(_first(d, ("queries.train.tsv", "queries.tsv"))) for lang, d in dirs.items()}
    chosen = [q for q in queries[langs[0]] if q in qrels and all(q in queries[l] for l in langs)]
    report.note("queries_without_relevant_passage", sum(q not in qrels for q in queries[langs[0]]))
    chosen = chosen[:max_items] if max_items else chosen
    needed = {qrels[q][0] for q in chosen} | {p for q in chosen for p in hard.get(q, [])}
    passages = {}
    for lang, d in dirs.items():  # stream each collection, keeping only the passages needed
        path = _first(d, ("collection.tsv",))
        passages[lang] = {row[0]: row[1] for _, row in _tsv(path) if row[0] in needed and len(row) > 1}
    items = []
    for q in chosen:
        pos = qrels[q][0]
        if any(pos not in passages[l] for l in langs):
            report.skip("passage_missing", f"query {q}: passage {pos} missing from a language's collection.tsv")
            continue
        negs = {l: [passages[l][p] for p in hard.get(q, []) if p in passages[l]] for l in langs}
        items.append(ParallelItem(id=q, queries={l: queries[l][q] for l in langs},
                                  positives={l: passages[l][pos] for l in langs},
                                  negatives={l: v for l, v in negs.items() if v}, source="mmarco"))
    return items


def _irds_items(langs: list[str], max_items, negatives: int, factory: Callable, report: LoadReport):
    datasets = {lang: factory(f"mmarco/v2/{lang}/train") for lang in langs}
    first = datasets[langs[0]]
    qrels: dict[str, str] = {}
    for qrel in first.qrels_iter():
        if qrel.relevance > 0:
            qrels.setdefault(qrel.query_id, qrel.doc_id)
    hard: dict[str, list[str]] = defaultdict(list)
    if negatives:
        for pair in first.docpairs_iter():
            if len(hard[pair.query_id]) < negatives:
                hard[pair.query_id].append(pair.doc_id_b)
    stores = {lang: ds.docs_store() for lang, ds in datasets.items()}
    streams = [datasets[lang].queries_iter() for lang in langs]
    items = []
    for row in zip(*streams):
        ids = {q.query_id for q in row}
        if len(ids) != 1:
            raise DataError(f"query streams are not aligned across {langs} (ids {sorted(ids)}); "
                            "use source='tsv' with per-language files")
        qid = row[0].query_id
        if qid not in qrels:
            report.note("queries_without_relevant_passage")
            continue
        doc_ids = [qrels[qid], *hard.get(qid, [])]
        docs = {lang: stores[lang].get_many(doc_ids) for lang in langs}
        if any(qrels[qid] not in docs[lang] for lang in langs):
            report.skip("passage_missing", f"query {qid}: passage {qrels[qid]} missing in a language")
            continue
        items.append(ParallelItem(
            id=qid, queries={_item_lang(lang): q.text for lang, q in zip(langs, row)},
            positives={_item_lang(lang): docs[lang][qrels[qid]].text for lang in langs},
            negatives={_item_lang(lang): [docs[lang][d].text for d in hard.get(qid, []) if d in docs[lang]]
                       for lang in langs if any(d in docs[lang] for d in hard.get(qid, []))},
            source="mmarco"))
        if max_items and len(items) >= max_items:
            break
    return items


def load_parallel(path=None, *, langs: list[str] | None = None, source: str = "auto", max_items: int | None = None,
                  negatives: int = 0, dataset_factory: Callable | None = None) -> ItemList:
    """Parallel mMARCO items (see the module docstring). `dataset_factory` replaces
    `ir_datasets.load` (tests pass a fake; nothing is downloaded then)."""
    if not langs:
        raise DataError("mmarco needs langs=[...]: mMARCO v2 codes (ar de dt es fr hi id it ja pt ru vi zh) "
                        "or, for TSV folders, the language sub-folder names", field="langs")
    if source == "auto":
        source = "tsv" if path is not None and Path(path).is_dir() else "ir_datasets"
    report = LoadReport(source=str(path) if path is not None else "ir_datasets:mmarco/v2")
    if source == "tsv":
        if path is None:
            raise DataError("source='tsv' needs PATH (a folder with one sub-folder per language)")
        items = _tsv_items(Path(path), list(langs), max_items, negatives, report)
    elif source == "ir_datasets":
        if dataset_factory is None:
            import ir_datasets

            dataset_factory = ir_datasets.load
        items = _irds_items(list(langs), max_items, negatives, dataset_factory, report)
    else:
        raise DataError(f"source must be 'auto', 'tsv' or 'ir_datasets', got {source!r}", field="source")
    report.loaded = len(items)
    report.log()
    return ItemList(items, report=report)
