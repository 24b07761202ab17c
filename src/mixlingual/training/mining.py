"""Mined hard negatives that respect parallel groups (a translation of the positive is not a negative).

`mine_negatives(encoder, items, options)` encodes the training passages and queries (through the
on-disk embedding cache when `options.cache_dir` is set), retrieves each query's nearest passages
of every passage language and writes the survivors of three filters into `item.negatives`.

Per item and passage language L (the item has a positive in L):

* **candidates**: every passage of language L in the training set - positives and existing
  negatives of all items - deduplicated by normalized text (`data.overlap.normalize_text`: NFKC,
  casefold, punctuation and symbols dropped, whitespace collapsed); the first spelling met wins.
* **queries**: the item's query in L when it has one (`queries="auto"`, default), else every query
  language of the item; `queries="all"` always uses every query language. With several queries
  the candidates are the union of their top-`depth` lists, ranked by the maximum score over them,
  so a negative in L is hard for any query that is paired with L in X-Y batches, and for the L
  query in X-X batches. (Training takes negatives in the passage's language, so negatives stored
  under L serve X-Y pairs -> L and the X-X pair L -> L alike.)
* **filters**, applied in this order while walking down the ranking until `k` are mined; every
  candidate walked over and not mined is counted under the first rule it meets:
  1. `equal_text` - its normalized text equals a positive of the item (in any language);
  2. `same_group` - it is a positive of another item of the item's parallel group (a translation
     or paraphrase of the positive). The group's existing hard negatives are not positives, so
     they are not "passages of the group" here;
  3. `above_margin` - it scores above `margin` x the positive's score for any of the queries used
     (positive-aware filtering: likely an unlabelled positive). `margin=None` turns this off;
  4. `already_negative` - the item already holds it as a negative in L (kept, not mined twice).
* **merge** with the item's existing negatives (e.g. the mlqa loader's in-paragraph sentences):
  `existing-first` (default: existing ones in their order, then the mined ones by score),
  `mined-first`, or `replace` (existing negatives dropped, and not used as rule 4). The list is
  deduplicated by normalized text, first occurrence kept. Training takes the first
  `data.hard_negatives` of each list.

Scores are cosine (normalized embeddings); retrieval is exact and chunked
(`search.exact_topk`) or FAISS (`search.faiss_topk`).

One module on purpose: the filters and the merge above are one algorithm (`mine_negatives`);
`Remining` at the end is only its call during training, kept beside the `MineOptions` it checks.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data.overlap import normalize_text
from mixlingual.data.records import ParallelItem
from mixlingual.evaluation.embedding_cache import encode_cached
from mixlingual.errors import ConfigError

RULES = ("equal_text", "same_group", "above_margin", "already_negative")
QUERY_MODES = ("auto", "all")
MERGE_MODES = ("existing-first", "mined-first", "replace")
SEARCH_MODES = ("exact", "faiss")


@dataclass
class MineOptions:
    k: int = 8                      # negatives mined per (item, passage language)
    depth: int = 100                # candidates retrieved per query before filtering
    margin: float | None = 0.95     # reject scores above margin * positive score; None: off
    queries: str = "auto"           # auto: the query in L if present, else all; all: always all
    merge: str = "existing-first"   # existing-first | mined-first | replace
    search: str = "exact"           # exact (chunked numpy) | faiss (IndexFlatIP)
    batch_size: int = 64
    cache_dir: str | None = None    # on-disk embedding cache (mixlingual.evaluation.embedding_cache)
    show_progress: bool | None = None

    def check(self) -> None:
        if not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"mining k: must be an integer >= 1, got {self.k!r}")
        if not isinstance(self.depth, int) or self.depth < self.k:
            raise ConfigError(f"mining depth: must be an integer >= k ({self.k}), got {self.depth!r}")
        if self.margin is not None and not (isinstance(self.margin, (int, float)) and self.margin > 0):
            raise ConfigError(f"mining margin: must be a number > 0 or none, got {self.margin!r}")
        for name, value, allowed in (("queries", self.queries, QUERY_MODES), ("merge", self.merge, MERGE_MODES),
                                     ("search", self.search, SEARCH_MODES)):
            if value not in allowed:
                raise ConfigError(f"mining {name}: must be one of {', '.join(allowed)}, got {value!r}")


@dataclass
class MineReport:
    items: int = 0
    pairs: int = 0                  # (item, passage language) lists mined for
    candidates: dict = field(default_factory=dict)    # lang -> distinct passages (normalized)
    mined: int = 0
    existing_kept: int = 0
    rejected: Counter = field(default_factory=Counter)  # rule -> candidates
    short: int = 0                  # pairs that got fewer than k within depth
    scores: dict = field(default_factory=lambda: {"positive_mean": None, "mined_mean": None})
    per_language: dict = field(default_factory=dict)  # lang -> {"pairs", "mined", rule...}
    seconds: float = 0.0
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["rejected"] = {rule: int(self.rejected.get(rule, 0)) for rule in RULES}
        return out

    def summary(self) -> str:
        rejected = ", ".join(f"{rule} {self.rejected.get(rule, 0)}" for rule in RULES)
        return (f"{self.items} items, {self.pairs} (item, language) lists: mined {self.mined} negatives, "
                f"kept {self.existing_kept} existing; rejected: {rejected}; "
                f"{self.short} lists short of k; {self.seconds:.1f} s")


class _PassagePool:
    """The distinct passages of one language: normalized key -> row, with the groups they are positive of."""

    def __init__(self):
        self.texts: list[str] = []
        self.row: dict[str, int] = {}
        self.groups: list[set] = []

    def add(self, text: str, group: str | None) -> int:
        key = normalize_text(text)
        row = self.row.get(key)
        if row is None:
            row = self.row[key] = len(self.texts)
            self.texts.append(text)
            self.groups.append(set())
        if group is not None:
            self.groups[row].add(group)
        return row


def _pools(items: list[ParallelItem]) -> dict[str, _PassagePool]:
    pools: dict[str, _PassagePool] = defaultdict(_PassagePool)
    for item in items:
        for lang, text in item.positives.items():
            pools[lang].add(text, item.group)
        for lang, texts in item.negatives.items():
            for text in texts:
                pools[lang].add(text, None)
    return dict(sorted(pools.items()))


def _query_langs(item: ParallelItem, lang: str, mode: str) -> list[str]:
    if mode == "auto" and lang in item.queries:
        return [lang]
    return sorted(item.queries)


def _topk(queries: np.ndarray, candidates: np.ndarray, depth: int, search: str) -> np.ndarray:
    from mixlingual.evaluation.search import exact_topk, faiss_topk

    if search == "faiss":
        return faiss_topk(queries, candidates, depth)[0]
    return exact_topk(queries, candidates, depth)[0]


def merge_negatives(existing: list[str], mined: list[str], merge: str) -> list[str]:
    """Existing and mined negatives in `merge` order, deduplicated by normalized text (first kept)."""
    parts = {"existing-first": (existing, mined), "mined-first": (mined, existing), "replace": (mined,)}[merge]
    seen, out = set(), []
    for text in (t for part in parts for t in part):
        key = normalize_text(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out


def mine_negatives(encoder, items: list[ParallelItem], options: MineOptions | None = None
                   ) -> tuple[list[ParallelItem], MineReport]:
    """Items with mined hard negatives merged in (new objects; `items` is not changed) and the report."""
    options = options or MineOptions()
    options.check()
    started = time.perf_counter()
    items = list(items)
    report = MineReport(items=len(items), options={k: v for k, v in dataclasses.asdict(options).items()
                                                   if k not in ("cache_dir", "show_progress")})
    pools = _pools(items)
    encode = lambda texts, kind: encode_cached(encoder, texts, kind, cache_dir=options.cache_dir,  # noqa: E731
                                               batch_size=options.batch_size, show_progress=options.show_progress)
    query_texts = sorted({text for item in items for text in item.queries.values()})
    query_row = {text: i for i, text in enumerate(query_texts)}
    query_vecs = encode(query_texts, "query")
    mined: list[dict[str, list[str]]] = [{} for _ in items]   # item -> lang -> mined texts
    score_sums = [0.0, 0.0]   # positive score (max over the queries used), score of the mined ones
    for lang, pool in pools.items():
        report.candidates[lang] = len(pool.texts)
        stats = report.per_language.setdefault(lang, {"pairs": 0, "mined": 0, **{r: 0 for r in RULES}})
        jobs = [(i, _query_langs(item, lang, options.queries)) for i, item in enumerate(items)
                if lang in item.positives and item.queries]
        if not jobs:
            continue
        passage_vecs = encode(pool.texts, "passage")
        rows = [query_row[items[i].queries[q]] for i, langs in jobs for q in langs]
        top = _topk(query_vecs[rows], passage_vecs, min(options.depth, len(pool.texts)), options.search)
        start = 0
        for i, langs in jobs:
            item = items[i]
            q = query_vecs[rows[start:start + len(langs)]]
            ids = np.unique(top[start:start + len(langs)])
            start += len(langs)
            ids = ids[ids >= 0]
            scores = q @ passage_vecs[ids].T                       # (queries, candidates)
            positive = q @ passage_vecs[pool.row[normalize_text(item.positives[lang])]]
            above = (np.any(scores > options.margin * positive[:, None], axis=0)
                     if options.margin is not None else np.zeros(len(ids), bool))
            best = scores.max(axis=0)
            order = np.lexsort((ids, -best))
            positives = {normalize_text(t) for t in item.positives.values()}
            existing = item.negatives.get(lang, []) if options.merge != "replace" else []
            existing_keys = {normalize_text(t) for t in existing}
            chosen: list[str] = []
            score_sums[0] += float(positive.max())
            for j in order:
                if len(chosen) == options.k:
                    break
                row = int(ids[j])
                key = normalize_text(pool.texts[row])
                rule = ("equal_text" if key in positives else
                        "same_group" if item.group in pool.groups[row] else
                        "above_margin" if above[j] else
                        "already_negative" if key in existing_keys else None)
                if rule is None:
                    chosen.append(pool.texts[row])
                    score_sums[1] += float(best[j])
                else:
                    report.rejected[rule] += 1
                    stats[rule] += 1
            mined[i][lang] = chosen
            report.pairs += 1
            report.mined += len(chosen)
            report.short += len(chosen) < options.k
            stats["pairs"] += 1
            stats["mined"] += len(chosen)
    if report.pairs:
        report.scores["positive_mean"] = round(score_sums[0] / report.pairs, 4)
    if report.mined:
        report.scores["mined_mean"] = round(score_sums[1] / report.mined, 4)
    out = []
    for i, item in enumerate(items):
        negatives = {}
        for lang in sorted(set(item.negatives) | set(mined[i])):
            existing = item.negatives.get(lang, []) if options.merge != "replace" else []
            merged = merge_negatives(existing, mined[i].get(lang, []), options.merge)
            report.existing_kept += sum(1 for t in merged if t in existing)
            if merged:
                negatives[lang] = merged
        out.append(dataclasses.replace(item, negatives=negatives, queries=dict(item.queries),
                                       positives=dict(item.positives), meta=dict(item.meta)))
    report.seconds = round(time.perf_counter() - started, 3)
    return out, report


# ----- re-mining during training (ANCE-style) -----------------------------------------------
def check_remine_config(config) -> None:
    """`data.remine_every` / `data.mining` checks that need no data (called by `config.validate`)."""
    data = config.data
    if data.remine_every < 0:
        raise ConfigError(f"data.remine_every: must be >= 0, got {data.remine_every}")
    known = [f.name for f in dataclasses.fields(MineOptions) if f.name not in ("cache_dir", "show_progress")]
    for key in data.mining:
        if key not in known:
            raise ConfigError(f"unknown config key 'data.mining.{key}'; known: {', '.join(known)}")
    try:
        MineOptions(**data.mining).check()
    except ConfigError as err:
        raise ConfigError(f"data.{str(err).replace('mining ', 'mining.', 1)}") from None
    if data.remine_every:
        if data.hard_negatives < 1:
            raise ConfigError("data.remine_every: mined negatives are only used with data.hard_negatives >= 1")
        if data.stream:
            raise ConfigError("data.remine_every: re-mining needs the items in memory; set data.stream=false")
        if config.train.task != "text":
            raise ConfigError(f"data.remine_every: only the text task mines negatives, not '{config.train.task}'")


class Remining:
    """Every `data.remine_every` steps, mine the training items again with the model being trained.

    Always from the items as loaded (their own negatives merged per `data.mining.merge`), never
    from an earlier mining. The result replaces the task's items in place (the sampler keeps its
    list; its `BatchGuard` keys stay those of the loaded negatives, so a mined negative equal to a
    batch-mate's positive is left to the loss's same-text mask) and is written to
    OUT/mined/step-XXXXXXXX.jsonl (atomic,
    rank 0; every rank mines the same items from the same weights). The loop keeps that path in
    its checkpointed state, so `--resume` reloads the very negatives the run was using.
    """

    def __init__(self, config, task, out_dir, main: bool = True):
        self.every = config.data.remine_every
        self.options = MineOptions(**config.data.mining)
        self.task, self.main = task, main
        self.folder = Path(out_dir) / "mined"
        self.base = list(task.items)

    def due(self, step: int, total_steps: int) -> bool:
        return bool(self.every) and step % self.every == 0 and step < total_steps

    def run(self, step: int) -> str:
        """Mine with the current model; swap the items; return the file that holds them."""
        from mixlingual.data.jsonl import write_parallel
        from mixlingual.io import write_json_atomic

        items, report = mine_negatives(self.task.encoder, self.base, self.options)
        self.task.items[:] = items
        path = self.folder / f"step-{step:08d}.jsonl"
        if self.main:
            write_parallel(items, path)
            write_json_atomic(Path(f"{path}.report.json"), {"step": step, **report.to_dict()})
            print(f"step {step}: re-mined negatives: {report.summary()}", flush=True)
        return str(path)

    def restore(self, path: str | None) -> None:
        """On resume: put back the items of the last mining before the checkpoint (None: the loaded ones)."""
        from mixlingual.data.jsonl import read_parallel

        if path is None:
            return
        items = read_parallel(path)
        if [i.id for i in items] != [i.id for i in self.base]:
            raise ConfigError(f"cannot resume: {path} does not hold the training items of this run")
        self.task.items[:] = items
