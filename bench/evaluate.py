"""Benchmark: scoring + all metrics of an XQuAD-R-sized evaluation, against a per-query reference.

Problem: 11 languages x 1190 queries = 13,090 queries, 11 x 1183 + 1 = 13,014 candidate sentences,
384-dim random unit vectors; every query group has one relevant sentence per language (LAReQA
style), planted to score higher than chance.  `evaluate_collection` runs all three settings
(mono, cross for all 110 ordered pairs, multi) plus rank distance from precomputed embeddings
(a lookup "encoder"), so encoding is excluded.

Reference: the straightforward way - for each (query, pool) one numpy dot product and
scikit-learn's `average_precision_score` - timed on a random subset of queries per setting and
extrapolated to the full problem (stated in the output); its APs are compared with ours.

    .venv/bin/python bench/evaluate.py [--ref-queries 150] [--out bench/results/evaluate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.evaluation.evaluate import evaluate_collection

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


class LookupEncoder:
    """Returns precomputed vectors by text: encoding costs a dict lookup."""

    name, dim = "lookup", 384

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def fingerprint(self) -> str:
        return "bench-lookup"

    def encode(self, texts, kind="passage", batch_size=64, show_progress=None):
        return np.stack([self.table[t] for t in texts])


def build_problem(n_queries=1190, n_sentences=1183, dim=384, seed=0):
    """A synthetic collection and its embeddings, relevant candidates planted near their queries."""
    rng = np.random.default_rng(seed)

    def unit(x):
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    sentence_base = rng.standard_normal((n_sentences, dim))
    answer_of = rng.integers(0, n_sentences, n_queries)  # several questions may share a sentence
    lang_shift = rng.standard_normal((len(LANGS), dim)) * 0.8  # language bias in the embeddings
    queries, cands, table = [], [], {}
    groups_of_sentence = [[] for _ in range(n_sentences)]
    for g, s in enumerate(answer_of):
        groups_of_sentence[s].append(f"g{g}")
    for li, lang in enumerate(LANGS):
        q_vecs = unit(sentence_base[answer_of] + lang_shift[li] + rng.standard_normal((n_queries, dim)) * 2.2)
        n_here = n_sentences + (lang == "en")  # one unanswered extra sentence: 13,014 in all
        c_vecs = unit(np.concatenate([sentence_base, rng.standard_normal((1, dim))])[:n_here]
                      + lang_shift[li] + rng.standard_normal((n_here, dim)) * 2.0)
        for g in range(n_queries):
            text = f"q {lang} {g}"
            queries.append(Query(f"{lang}:q{g}", lang, text, f"g{g}"))
            table[text] = q_vecs[g]
        for s in range(n_here):
            text = f"c {lang} {s}"
            groups = tuple(groups_of_sentence[s]) if s < n_sentences else ()
            cands.append(Candidate(f"{lang}:s{s}", lang, text, groups))
            table[text] = c_vecs[s]
    return Collection("synthetic-xquad-r", queries, cands), LookupEncoder(table)


def reference_ap(collection, encoder, n_per_setting: int, seed: int = 1):
    """Per-query numpy + sklearn AP on a subset; returns seconds per query and the APs per setting."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    by_lang = {lang: [c for c in collection.candidates if c.lang == lang] for lang in LANGS}
    mats = {lang: np.stack([encoder.table[c.text] for c in cs]) for lang, cs in by_lang.items()}
    pool_c = collection.candidates
    pool = np.stack([encoder.table[c.text] for c in pool_c])
    picked = rng.choice(len(collection.queries), n_per_setting, replace=False)
    out = {}
    for setting in ("mono", "cross", "multi"):
        started, aps = time.perf_counter(), {}
        for i in picked:
            q = collection.queries[i]
            target = q.lang if setting == "mono" else LANGS[(LANGS.index(q.lang) + 1) % len(LANGS)]
            cands, mat = (pool_c, pool) if setting == "multi" else (by_lang[target], mats[target])
            labels = np.array([q.group in c.groups for c in cands])
            aps[(q.id, target if setting != "multi" else "all")] = average_precision_score(
                labels, mat @ encoder.table[q.text])
        out[setting] = ((time.perf_counter() - started) / n_per_setting, aps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-queries", type=int, default=150, help="reference queries per setting")
    parser.add_argument("--out", default="bench/results/evaluate.json")
    args = parser.parse_args()

    collection, encoder = build_problem()
    n_q, n_c = len(collection.queries), len(collection.candidates)
    started = time.perf_counter()
    result = evaluate_collection(encoder, collection)
    wall = time.perf_counter() - started
    tracemalloc.start()
    evaluate_collection(encoder, collection)
    peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    ref = reference_ap(collection, encoder, args.ref_queries)
    # evaluations the reference would need for the full problem: one per (query, pool)
    n_evals = {"mono": n_q, "cross": n_q * (len(LANGS) - 1), "multi": n_q}
    ref_total = sum(ref[s][0] * n_evals[s] for s in n_evals)
    ours_score = result["timing_s"]["score"]

    # agreement of our per-query AP with sklearn's on the reference subset (random floats: no ties)

    with tempfile.TemporaryDirectory() as tmp:
        evaluate_collection(encoder, collection, out_dir=tmp, run_depth=0, cross_run_depth=0)
        ours_ap = {}
        with open(os.path.join(tmp, "per_query.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                ours_ap[(r["setting"], r["query"], r["clang"])] = r["map"]
    max_diff = max(abs(ours_ap[(s, qid, t)] - ap) for s in ref for (qid, t), ap in ref[s][1].items())

    rows = [
        ("problem", f"{n_q} queries x {n_c} candidates, dim 384, {len(LANGS)} languages"),
        ("ours: scoring + all metrics (s)", f"{ours_score:.2f}"),
        ("ours: whole evaluate_collection call (s)", f"{wall:.2f}"),
        ("ours: peak traced memory (MiB)", f"{peak_mib:.0f}"),
        ("reference: s per query (mono/cross/multi)", " / ".join(f"{ref[s][0] * 1e3:.2f}ms" for s in n_evals)),
        ("reference: extrapolated total (s)", f"{ref_total:.1f} (from {args.ref_queries} queries per setting)"),
        ("speed-up (reference / ours scoring)", f"{ref_total / ours_score:.0f}x"),
        ("max |AP ours - AP sklearn| on the subset", f"{max_diff:.2e}"),
        ("mAP mono / cross / multi", " / ".join(f"{result['settings'][s]['map']:.3f}" for s in n_evals)),
        ("rank distance mean", f"{result['rank_distance']['mean']:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    record = {"queries": n_q, "candidates": n_c, "dim": 384, "ours_score_s": ours_score, "ours_wall_s": wall,
              "ours_peak_mib": peak_mib, "reference_s_per_query": {s: ref[s][0] for s in n_evals},
              "reference_queries_per_setting": args.ref_queries, "reference_extrapolated_s": ref_total,
              "speedup": ref_total / ours_score, "max_ap_diff": max_diff, "cpu_count": os.cpu_count(),
              "settings_map": {s: result["settings"][s]["map"] for s in n_evals}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
