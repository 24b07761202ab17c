"""The files an evaluation writes into its output folder, each one atomically.

    metrics.json            the summary (see docs/evaluation.md)
    per_query.jsonl         one line per (setting, query, candidate language): paired scores for
                            significance tests; undefined values (no relevant candidate) are null;
                            `group` = the query's parallel question group (the unit of resampling)
    runs/<setting>.trec     TREC runs: top-k per query (cross: query id "<qid>@<candidate lang>")
    qrels/<setting>.qrels   the relevance judgements of that setting, so trec_eval can re-score

Files are written under temporary names while the evaluation runs and renamed into place only
when it has finished; an interrupted evaluation leaves no half-written output behind.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from mixlingual.io import json_safe, write_json_atomic
from mixlingual.evaluation.metrics import METRIC_NAMES


def _first_rank(rank) -> int | None:
    """The rank of the best relevant candidate as an int; None when there is none."""
    return int(rank) if math.isfinite(rank) else None


class EvalOutputs:
    """Streams run files, qrels and per-query scores of one evaluation into `out_dir`."""

    def __init__(self, out_dir, settings):
        self.dir = Path(out_dir)
        self.settings = tuple(settings)
        names = ["per_query.jsonl"] + [f"runs/{s}.trec" for s in self.settings] \
            + [f"qrels/{s}.qrels" for s in self.settings]
        self._final = {name: self.dir / name for name in names}
        self._tmp = {name: p.with_name(f".{p.name}.{os.getpid()}.tmp") for name, p in self._final.items()}
        self._files = {}
        for name, tmp in self._tmp.items():
            tmp.parent.mkdir(parents=True, exist_ok=True)
            self._files[name] = open(tmp, "w", encoding="utf-8")

    def _per_query_line(self, setting, q, clang, values, i) -> str:
        row = {"setting": setting, "query": q.id, "group": q.group, "qlang": q.lang, "clang": clang,
               "n_relevant": int(values["n_relevant"][i]), "first_rank": _first_rank(values["first_rank"][i])}
        row.update({m: json_safe(float(values[m][i])) for m in METRIC_NAMES})
        for bias in ("rank_distance", "language_preference"):
            if bias in values:
                row[bias] = json_safe(float(values[bias][i]))
        return json.dumps(row) + "\n"

    def add_language(self, scores, pool, depths: dict[str, int]) -> None:
        """Write everything about the queries of one language (`evaluate.LanguageScores`, one scoring
        pass) against `pool` (the candidate pool: `langs`, `ids`, `block_of`); `depths`: run depth per setting."""
        x, qs, res, relevance = scores.lang, scores.queries, scores.search, scores.relevance
        per_pair, multi_values = scores.per_pair, scores.multi
        cand_langs, cand_ids, block_lang = pool.langs, pool.ids, pool.block_of
        per_query, tag = self._files["per_query.jsonl"], "mixlingual"
        for i, q in enumerate(qs):
            rel = relevance.indices[relevance.indptr[i]:relevance.indptr[i + 1]]
            for b, y in enumerate(cand_langs):
                setting = "mono" if y == x else "cross"
                if setting not in self.settings:
                    continue
                per_query.write(self._per_query_line(setting, q, y, per_pair[(x, y)], i))
                qid = q.id if setting == "mono" else f"{q.id}@{y}"
                self._files[f"qrels/{setting}.qrels"].writelines(
                    f"{qid} 0 {cand_ids[c]} 1\n" for c in rel if block_lang[c] == b)
                depth = depths[setting]
                if not depth:
                    continue
                ids, scores = res.block_topk_ids[i, b, :depth], res.block_topk_scores[i, b, :depth]
                self._files[f"runs/{setting}.trec"].writelines(
                    f"{qid} Q0 {cand_ids[c]} {r} {s:.6f} {tag}\n"
                    for r, (c, s) in enumerate(zip(ids, scores), 1) if c >= 0)  # -1: block exhausted
            if "multi" in self.settings:
                per_query.write(self._per_query_line("multi", q, "all", multi_values, i))
                self._files["qrels/multi.qrels"].writelines(f"{q.id} 0 {cand_ids[c]} 1\n" for c in rel)
                depth = depths["multi"]   # the top-k lists may run deeper (language preference)
                if res.topk_ids is None or not depth:
                    continue
                self._files["runs/multi.trec"].writelines(
                    f"{q.id} Q0 {cand_ids[c]} {r} {s:.6f} {tag}\n"
                    for r, (c, s) in enumerate(zip(res.topk_ids[i, :depth], res.topk_scores[i, :depth]), 1))

    def finish(self, result: dict) -> None:
        """Close the streams, move them into place and write metrics.json last."""
        for f in self._files.values():
            f.close()
        for name, tmp in self._tmp.items():
            os.replace(tmp, self._final[name])
        write_json_atomic(self.dir / "metrics.json", result)

    def abort(self) -> None:
        """Close and delete the temporary files (the evaluation failed)."""
        for name, f in self._files.items():
            f.close()
            self._tmp[name].unlink(missing_ok=True)
