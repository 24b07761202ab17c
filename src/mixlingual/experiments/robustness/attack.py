"""Black-box adversarial typo attack: greedy character edits that push the relevant candidates down.

For each query, at most `budget` character edits (insert / delete / substitute / swap of adjacent
letters, each one edit, script-aware as in `perturb.py` beside it) are chosen greedily: every step tries
`tries_per_step` random single edits of the current text, encodes them in one batch, and keeps the
one that ranks the best relevant candidate lowest (ties broken by the smallest margin between the
best relevant and the best non-relevant score). A step that cannot make things worse for the model
ends the attack, so the attacked rank is never better than the clean one.

Only `encoder.encode(texts, kind=...)` is used (black box: no gradients, no weights). The report
counts model queries (query texts encoded) next to the budget, as attack cost.

    mixlingual attack --model M --benchmark xquad-r --data PATH --out DIR --budget 3 [--max-queries 200] [--langs de,en] \
        [--data-option articles=12-23]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mixlingual.data.records import Collection
from mixlingual.errors import ConfigError
from mixlingual.evaluation.cli import add_data_option_argument, add_runtime_arguments, parse_data_options
from mixlingual.io import write_atomic
from mixlingual.experiments.robustness.perturb import TYPO_OPS, query_rng, typo_edit


@dataclass
class AttackConfig:
    budget: int = 3                 # max character edits per query
    tries_per_step: int = 16        # single-edit variants encoded per greedy step
    pool: str = "multi"             # multi: all candidates; mono: the query's language only
    seed: int = 0
    max_queries: int | None = None  # attack a seeded sample of this many queries
    batch_size: int = 64

    def __post_init__(self):
        if self.budget < 0 or self.tries_per_step < 1:
            raise ConfigError("attack: budget must be >= 0 and tries_per_step >= 1")
        if self.pool not in ("multi", "mono"):
            raise ConfigError(f"attack: pool must be 'multi' or 'mono', got '{self.pool}'")


@dataclass
class QueryAttack:
    """One attacked query; ranks are of its best relevant candidate in the attack's pool."""

    query_id: str
    lang: str
    group: str              # the parallel question group (as `group` in evaluate's per_query.jsonl)
    original: str
    adversarial: str
    edits: int
    rank_before: int
    rank_after: int
    model_queries: int

    def to_row(self) -> dict:
        """attack.json's per-query row: the fields above plus the per-query metrics before / after
        (`mrr@10_before`, `r@1_after`, ...; see `rank_metrics`), for aggregation over models."""
        return {**asdict(self), **{f"{name}_{when}": value
                                   for when, rank in (("before", self.rank_before), ("after", self.rank_after))
                                   for name, value in rank_metrics(rank).items()}}


def rank_metrics(rank: int) -> dict[str, float]:
    """Per-query metrics from the rank of the best relevant candidate, as evaluate defines them:
    reciprocal rank cut at 10 (`mrr@10`) and whether a relevant candidate is first (`r@1`)."""
    return {"mrr@10": 1.0 / rank if rank <= 10 else 0.0, "r@1": float(rank == 1)}


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def rank_and_margin(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows of scores (variants x candidates): the 1-based rank of the best relevant candidate
    (ties counted against it) and best relevant minus best non-relevant score."""
    best_rel = np.where(relevant, scores, -np.inf).max(axis=1)
    other = np.where(relevant, -np.inf, scores)
    ranks = 1 + (other >= best_rel[:, None]).sum(axis=1)
    return ranks, best_rel - other.max(axis=1)


def attack_query(encode, text: str, cand_vecs: np.ndarray, relevant: np.ndarray, config: AttackConfig,
                 rng: np.random.Generator) -> tuple[str, int, int, int, int]:
    """Greedy attack on one query. Returns (text, edits, rank_before, rank_after, model queries)."""
    q = _normalize(encode([text]))
    rank, margin = (v[0] for v in rank_and_margin(q @ cand_vecs.T, relevant[None, :]))
    rank_before, used, edits = int(rank), 1, 0
    while edits < config.budget:
        variants = sorted({typo_edit(text, TYPO_OPS[int(rng.integers(len(TYPO_OPS)))], rng)
                           for _ in range(config.tries_per_step)} - {text})
        if not variants:
            break
        vecs = _normalize(encode(variants))
        used += len(variants)
        ranks, margins = rank_and_margin(vecs @ cand_vecs.T, np.broadcast_to(relevant, (len(variants), relevant.size)))
        best = int(np.lexsort((margins, -ranks))[0])   # highest rank, then smallest margin
        if (ranks[best], -margins[best]) <= (rank, -margin):
            break                                       # no edit hurts the model: stop early
        text, rank, margin, edits = variants[best], ranks[best], margins[best], edits + 1
    return text, edits, rank_before, int(rank), used


def attack_collection(encoder, collection: Collection, config: AttackConfig, debias=None) -> dict:
    """Attack every (or a seeded sample of) query; return the report with per-query results.
    `debias` (a `models.debias_use.DebiasUse`) transforms every embedding the attack sees."""
    queries = list(collection.queries)
    if config.max_queries is not None and config.max_queries < len(queries):
        pick = np.random.default_rng(config.seed).choice(len(queries), config.max_queries, replace=False)
        queries = [queries[i] for i in sorted(pick)]
    cands = collection.candidates
    cand_vecs = encoder.encode([c.text for c in cands], kind="passage", batch_size=config.batch_size)
    debias_info = None
    if debias is not None:
        cand_vecs, debias_info = debias.apply_texts(encoder, cand_vecs, [c.lang for c in cands], "passage")
    cand_vecs = _normalize(cand_vecs)
    cand_lang = np.array([c.lang for c in cands])
    by_group = defaultdict(list)
    for i, c in enumerate(cands):
        for g in c.groups:
            by_group[g].append(i)

    def encoder_for(lang):
        def encode(texts):
            vectors = encoder.encode(texts, kind="query", batch_size=config.batch_size)
            return vectors if debias is None else debias.apply_texts(encoder, vectors, lang, "query")[0]
        return encode

    results, skipped = [], 0
    for query in queries:
        keep = np.ones(len(cands), bool) if config.pool == "multi" else cand_lang == query.lang
        relevant = np.zeros(len(cands), bool)
        relevant[by_group.get(query.group, [])] = True
        relevant &= keep
        if not relevant.any():
            skipped += 1        # nothing relevant in the pool: no rank to attack
            continue
        text, edits, before, after, used = attack_query(
            encoder_for(query.lang), query.text, cand_vecs[keep], relevant[keep], config, query_rng(config.seed, query.id))
        results.append(QueryAttack(query.id, query.lang, query.group, query.text, text, edits, before, after, used))
    return {"config": asdict(config), "collection": collection.name, "skipped_no_relevant": skipped,
            "passages_encoded": len(cands), "summary": summarize(results),
            "per_language": {lang: summarize([r for r in results if r.lang == lang])
                             for lang in sorted({r.lang for r in results})},
            "queries": [r.to_row() for r in results], **({"debias": debias_info} if debias_info else {})}


def summarize(results: list[QueryAttack]) -> dict:
    """Mean ranks, MRR@10 and R@1 before / after, top-1 flips, edits and model queries."""
    if not results:
        return {"n": 0}
    before = np.array([r.rank_before for r in results], float)
    after = np.array([r.rank_after for r in results], float)
    mrr = lambda ranks: float(np.mean([rank_metrics(r)["mrr@10"] for r in ranks]))  # noqa: E731
    return {"n": len(results), "mean_rank_before": float(before.mean()), "mean_rank_after": float(after.mean()),
            "mean_rank_drop": float((after - before).mean()), "mrr@10_before": mrr(before), "mrr@10_after": mrr(after),
            "r@1_before": float(np.mean(before == 1)), "r@1_after": float(np.mean(after == 1)),
            "top1_flipped_share": float(np.mean((before == 1) & (after > 1))),
            "mean_edits": float(np.mean([r.edits for r in results])),
            "model_queries": int(sum(r.model_queries for r in results))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or backbone name")
    parser.add_argument("--benchmark", required=True, help="collection loader name (xquad-r, mlqa-r, jsonl, ...)")
    parser.add_argument("--data", required=True, help="path given to the loader")
    add_data_option_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="folder for attack.json")
    parser.add_argument("--budget", type=int, default=3, help="max character edits per query (default 3)")
    parser.add_argument("--tries-per-step", type=int, default=16, help="variants encoded per greedy step")
    parser.add_argument("--pool", choices=("multi", "mono"), default="multi")
    parser.add_argument("--max-queries", type=int, default=None, help="attack a seeded sample of N queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--langs", help="comma-separated languages of the collection to keep (default: all)")
    add_runtime_arguments(parser)
    from mixlingual.models.debias_use import add_debias_arguments

    add_debias_arguments(parser, overlap=False)


def run(args: argparse.Namespace) -> int:
    from mixlingual.evaluation.cli import load_benchmark, load_encoder

    config = AttackConfig(args.budget, args.tries_per_step, args.pool, args.seed, args.max_queries)
    langs = args.langs.split(",") if args.langs else None
    options = parse_data_options(args.data_option)
    collection = load_benchmark(args.benchmark, args.data, candidate="sentence", langs=langs, options=options)
    if langs:   # loaders without a langs option: filter here
        collection = Collection(collection.name, [q for q in collection.queries if q.lang in langs],
                                [c for c in collection.candidates if c.lang in langs], collection.meta)
    from mixlingual.models.debias_use import debias_from_args

    debias = debias_from_args(args)
    report = {**attack_collection(load_encoder(args), collection, config, debias), "data_options": options}
    write_atomic(args.out / "attack.json", json.dumps(report, indent=2, ensure_ascii=False))
    s = report["summary"]
    if s["n"]:
        print(f"{s['n']} queries, budget {config.budget}: mean rank {s['mean_rank_before']:.2f} -> "
              f"{s['mean_rank_after']:.2f}, MRR@10 {s['mrr@10_before']:.3f} -> {s['mrr@10_after']:.3f}, "
              f"top-1 flipped {s['top1_flipped_share']:.1%}, {s['model_queries']} model queries")
    print(f"wrote {args.out / 'attack.json'}")
    return 0
