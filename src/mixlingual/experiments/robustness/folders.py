"""Read one model's robustness folder as paired per-query scores (clean, perturbed).

What `mixlingual robustness --model ... --out DIR` (and `mixlingual attack --out DIR/attack`) leave:

    DIR/clean/per_query.jsonl            the clean queries' rows (evaluate's per_query.jsonl)
    DIR/<name>-<rate>/                   one perturbation: perturbation.json, metrics.json, per_query.jsonl
    DIR/<any>/attack.json                an attack (by convention DIR/attack/); its query rows carry
                                         the metrics before and after the attack themselves

Every subfolder with a perturbation.json is a perturbation, every one with an attack.json an
attack; each is a *condition*, named by its folder. For each condition, each *measure* (setting,
metric) and each query row the reader gives (clean value, perturbed value); a row is evaluate's
(setting, query id, candidate language), or (pool, query id) for an attack, so clean and
perturbed rows of one query of one model are paired. A perturbed folder whose rows differ from
the clean folder's (missing or extra queries: another collection, an interrupted run) is refused,
naming the folder. The question group of a row is `aggregate.question_group`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mixlingual.data.jsonl import read_json_records
from mixlingual.errors import DataError
from mixlingual.experiments.sweep.aggregate import question_group

# (setting, metric) pairs compared clean vs perturbed, in report order; the first is the headline
MEASURES = (("multi", "map"), ("mono", "map"), ("cross", "map"), ("multi", "mrr@10"), ("multi", "r@1"),
            ("multi", "rank_distance"))
ATTACK_METRICS = ("mrr@10", "r@1")          # per-query metrics attack.json has before and after
PERTURBATION_SPEC = ("name", "rate", "seed")   # what defines a perturbation (the rest is its realized stats)
ATTACK_SPEC = ("budget", "tries_per_step", "pool", "seed", "max_queries")

Measure = tuple[str, str]
RowKey = tuple[str, str]                     # (query id, candidate language or pool)


@dataclass
class ConditionScores:
    """Paired per-query values of one condition (a perturbation or an attack) of one model."""

    name: str                                # the condition's folder name, e.g. 'typo-0.05' or 'attack'
    kind: str                                # 'perturbation' or 'attack'
    spec: dict                               # what defines it (PERTURBATION_SPEC / ATTACK_SPEC fields)
    values: dict[Measure, dict[RowKey, tuple[float | None, float | None]]]   # measure -> row -> (clean, perturbed)
    queries: dict[str, tuple[str, str]]      # query id -> (question group, query language)
    source: Path                             # the folder it was read from


def _read_rows(folder: Path) -> list[dict]:
    path = folder / "per_query.jsonl"
    if not path.is_file():
        raise DataError(f"{folder}: no per_query.jsonl (not a finished evaluation folder)")
    return [row for _, row in read_json_records(path) if isinstance(row, dict)]


def _evaluation_values(rows: list[dict]) -> dict[Measure, dict[RowKey, float | None]]:
    """{measure: {(query, clang): value}} for the MEASURES the rows have (value None: undefined)."""
    out: dict[Measure, dict[RowKey, float | None]] = {}
    for setting, metric in MEASURES:
        chosen = [r for r in rows if r.get("setting") == setting]
        if chosen and any(metric in r for r in chosen):
            out[(setting, metric)] = {(r["query"], r["clang"]): r.get(metric) for r in chosen}
    return out


def _row_keys(rows: list[dict]) -> set[tuple]:
    return {(r.get("setting"), r.get("query"), r.get("clang")) for r in rows}


def _check_same_rows(clean: Path, clean_keys: set, perturbed: Path, perturbed_keys: set) -> None:
    missing, extra = clean_keys - perturbed_keys, perturbed_keys - clean_keys
    if missing or extra:
        example = sorted(missing or extra, key=str)[0]
        raise DataError(f"{perturbed}: its query rows differ from the clean evaluation {clean} "
                        f"({len(missing)} of the clean folder's {len(clean_keys)} missing, {len(extra)} extra; "
                        f"e.g. {'missing' if missing else 'extra'} {example}); rerun it on the same data")


def _spec(source: dict, fields: tuple[str, ...]) -> dict:
    return {f: source.get(f) for f in fields}


def read_perturbations(folder: Path) -> list[ConditionScores]:
    """The perturbation conditions of a robustness folder, paired with DIR/clean."""
    perturbed = sorted(p.parent for p in folder.glob("*/perturbation.json"))
    if not perturbed:
        return []
    clean_rows = _read_rows(folder / "clean")
    clean_values, clean_keys = _evaluation_values(clean_rows), _row_keys(clean_rows)
    queries = {r["query"]: (question_group(r), r["qlang"]) for r in clean_rows}
    out = []
    for sub in perturbed:
        if not (sub / "metrics.json").is_file():
            raise DataError(f"{sub}: no metrics.json (an unfinished evaluation); rerun mixlingual robustness")
        rows = _read_rows(sub)
        _check_same_rows(folder / "clean", clean_keys, sub, _row_keys(rows))
        values = _evaluation_values(rows)
        paired = {m: {k: (v, values[m][k]) for k, v in clean_values[m].items()}
                  for m in clean_values if m in values}
        spec = _spec(json.loads((sub / "perturbation.json").read_text(encoding="utf-8")), PERTURBATION_SPEC)
        out.append(ConditionScores(sub.name, "perturbation", spec, paired, queries, sub))
    return out


def read_attack(path: Path) -> ConditionScores:
    """An attack.json as a condition: the pool is the setting, rows are queries."""
    report = json.loads(path.read_text(encoding="utf-8"))
    setting, rows = report["config"]["pool"], report["queries"]
    lacking = [m for m in ATTACK_METRICS if rows and f"{m}_before" not in rows[0]]
    if lacking:
        raise DataError(f"{path}: query rows without {', '.join(m + '_before' for m in lacking)} "
                        f"(written by an older mixlingual attack); rerun the attack")
    values = {(setting, m): {(r["query_id"], setting): (r[f"{m}_before"], r[f"{m}_after"]) for r in rows}
              for m in ATTACK_METRICS}
    queries = {r["query_id"]: (question_group(r), r["lang"]) for r in rows}
    return ConditionScores(path.parent.name, "attack", _spec(report["config"], ATTACK_SPEC), values, queries,
                           path.parent)


def read_model_folder(folder: Path) -> dict[str, ConditionScores]:
    """{condition name: ConditionScores} of one model's robustness folder (perturbations, then attacks)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    conditions = read_perturbations(folder) + [read_attack(p) for p in sorted(folder.glob("*/attack.json"))]
    if not conditions:
        raise DataError(f"{folder}: no perturbation (*/perturbation.json) or attack (*/attack.json) to summarize")
    return {c.name: c for c in conditions}
