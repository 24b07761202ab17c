"""Compare a clean and a perturbed evaluation of the same queries: metric change and top-1 flips.

Inputs are what `mixlingual evaluate` writes: two metrics.json dicts and the rows of their two
per_query.jsonl files (`setting`, `query`, `qlang`, `clang`, `first_rank`, metric values).

A query's top-1 *flips* when whether a relevant candidate is ranked first changes (hit -> miss
or miss -> hit); `first_rank` (the rank of the best relevant candidate) gives it without the run
files. With the TREC runs' rank-1 candidate ids (`top1_from_run`), `top1_changed` also counts
queries whose first candidate changed at all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from mixlingual.experiments.aggregate import flatten_numbers

REPORT_METRICS = ("map", "r@1", "r@10", "mrr@10", "ndcg@10")


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def top1_from_run(path) -> dict[str, str]:
    """query id -> its rank-1 candidate id, from a TREC run file."""
    top = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            qid, _, doc, rank, *_ = line.split()
            if rank == "1":
                top[qid] = doc
    return top


def _delta(clean, perturbed) -> dict:
    if clean is None or perturbed is None:
        return {"clean": clean, "perturbed": perturbed, "delta": None}
    return {"clean": clean, "perturbed": perturbed, "delta": perturbed - clean}


def _flip_stats(clean_rows: list[dict], perturbed_rows: list[dict]) -> dict:
    """Per setting and query language: share of queries whose top-1 hit status changed."""
    key = lambda r: (r["setting"], r["query"], r.get("clang"))  # noqa: E731
    perturbed_by_key = {key(r): r for r in perturbed_rows}
    counts: dict = defaultdict(lambda: defaultdict(lambda: {"n": 0, "hit_to_miss": 0, "miss_to_hit": 0}))
    unmatched = 0
    for row in clean_rows:
        other = perturbed_by_key.get(key(row))
        if other is None:
            unmatched += 1
            continue
        hit_before, hit_after = row.get("first_rank") == 1, other.get("first_rank") == 1
        for lang in (row.get("qlang", "?"), "all"):
            c = counts[row["setting"]][lang]
            c["n"] += 1
            c["hit_to_miss"] += hit_before and not hit_after
            c["miss_to_hit"] += hit_after and not hit_before
    out = {}
    for setting, langs in counts.items():
        out[setting] = {lang: {**c, "flipped_share": (c["hit_to_miss"] + c["miss_to_hit"]) / c["n"]}
                        for lang, c in sorted(langs.items())}
    return {"per_setting": out, "unmatched_queries": unmatched}


def robustness_report(clean_metrics: dict, perturbed_metrics: dict, per_query_clean,
                      per_query_perturbed, *, top1_clean: dict[str, str] | None = None,
                      top1_perturbed: dict[str, str] | None = None) -> dict:
    """Metric change (perturbed - clean) per setting and per language, and top-1 flip shares.

    `per_query_*` are per_query.jsonl rows or paths to such files.
    """
    if isinstance(per_query_clean, (str, Path)):
        per_query_clean = read_jsonl(per_query_clean)
    if isinstance(per_query_perturbed, (str, Path)):
        per_query_perturbed = read_jsonl(per_query_perturbed)
    clean_flat, pert_flat = flatten_numbers(clean_metrics), flatten_numbers(perturbed_metrics)
    settings = {}
    for setting, values in (clean_metrics.get("settings") or {}).items():
        if values:
            settings[setting] = {m: _delta(values.get(m), ((perturbed_metrics.get("settings") or {})
                                                            .get(setting) or {}).get(m)) for m in REPORT_METRICS}
    per_language = {}
    for setting, langs in (clean_metrics.get("per_language") or {}).items():
        per_language[setting] = {
            lang: {m: _delta(clean_flat.get(f"per_language.{setting}.{lang}.{m}"),
                             pert_flat.get(f"per_language.{setting}.{lang}.{m}")) for m in REPORT_METRICS}
            for lang in langs}
    report = {
        "settings": settings,
        "rank_distance": _delta(clean_flat.get("rank_distance.mean"), pert_flat.get("rank_distance.mean")),
        "per_language": per_language,
        "top1_flips": _flip_stats(per_query_clean, per_query_perturbed),
        "perturbation": perturbed_metrics.get("perturbation"),
    }
    if top1_clean is not None and top1_perturbed is not None:
        common = set(top1_clean) & set(top1_perturbed)
        changed = sum(top1_clean[q] != top1_perturbed[q] for q in common)
        report["top1_changed"] = {"n": len(common), "changed": changed,
                                  "share": changed / len(common) if common else None}
    return report
