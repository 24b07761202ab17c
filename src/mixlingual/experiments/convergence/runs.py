"""Training runs read for convergence: per-language dev curves, seeds, and the language groups.

A run folder is what `mixlingual train` writes (or a sweep cell holding it in `train/`):
`metrics.jsonl` (eval records with `per_language.{setting}.{lang}.{map,mrr@10}`), `config.yaml`
(batch size, gradient accumulation, seed), `summary.json` (world size) and `batch_counts.json`
(the (query -> passage) language pairs drawn). A sweep cell's `cell.json` gives its group and seed.

Runs with the same strategy label (`LABEL=DIR`, else a sweep cell's group, else the folder name)
are seeds of one recipe (`runs_by_label`); `summary.py` turns their curves into numbers and
`report.py` (the `mixlingual convergence` command) writes them.

Language groups (`language_groups`) are given on the command line or derived from training data.
Given: `--language-groups "both-sides=de,es,vi,zh;questions-only=ar,hi;unseen=el,en,ru,th,tr"` -
groups separated by ';', each `NAME=LANG,LANG,...`, in the order they should be reported.
Evaluated languages the spec does not name go to a last group `other`.

Derived (the default): from the (query -> passage) language pairs each run drew
(`batch_counts.json`, key `pairs`, e.g. {"ar->de": 12}), pooled over all runs so that every
recipe is reported on the same groups:

* `passages`     - the language was the passage side of at least one drawn pair (whether or not
                   it was also a query language);
* `queries-only` - it was a query side, never a passage side;
* `unseen`       - it was never drawn (an evaluation language absent from the training data).

Runs without any `batch_counts.json` give no evidence: then all languages form one group `all`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mixlingual.data.jsonl import read_json_records
from mixlingual.errors import ConfigError, DataError

METRICS = ("mrr@10", "map")


@dataclass
class Run:
    """One training run's dev curves: {(setting, lang, metric): {step: value}}."""

    path: Path
    label: str
    examples_per_step: int
    seed: int | None = None
    finished: bool = True                            # summary.json written (training ended)
    curves: dict = field(default_factory=dict)
    pairs: dict = field(default_factory=dict)        # "query_lang->passage_lang" -> pairs drawn
    pair_sides: dict = field(default_factory=dict)   # lang -> times it was a query or passage side


def _training_folder(run_dir: Path) -> Path:
    for candidate in (run_dir, run_dir / "train"):
        if (candidate / "metrics.jsonl").exists():
            return candidate
    raise DataError("no metrics.jsonl here or in train/ (is this a `mixlingual train` output folder?)",
                    path=str(run_dir))


def _read_yaml_or_json(path: Path) -> dict:
    if not path.exists():
        return {}
    return (yaml.safe_load if path.suffix == ".yaml" else json.loads)(path.read_text(encoding="utf-8")) or {}


def load_run(run_dir: Path | str) -> Run:
    """Read one run; 'LABEL=DIR' names its strategy (else a sweep cell's group, else the folder)."""
    label, eq, rest = str(run_dir).partition("=")
    given_label = label if eq and not Path(run_dir).exists() else None
    run_dir = Path(rest) if given_label else Path(run_dir)
    folder = _training_folder(run_dir)
    config = _read_yaml_or_json(folder / "config.yaml")
    summary = _read_yaml_or_json(folder / "summary.json")
    train = config.get("train", {})
    per_step = int(train.get("batch_size", 1)) * int(train.get("grad_accum", 1)) * int(summary.get("world_size", 1))
    cell = _read_yaml_or_json(Path(run_dir) / "cell.json")
    seed = cell.get("seed", train.get("seed"))
    run = Run(run_dir, given_label or cell.get("group") or run_dir.name, per_step,
              None if seed is None else int(seed), finished=(folder / "summary.json").exists())
    for _, record in read_json_records(folder / "metrics.jsonl"):
        if not isinstance(record, dict) or record.get("type") != "eval":
            continue
        for setting, langs in (record.get("per_language") or {}).items():
            for lang, values in langs.items():
                for metric in METRICS:
                    if values.get(metric) is not None:
                        run.curves.setdefault((setting, lang, metric), {})[int(record["step"])] = values[metric]
    run.pairs = dict(_read_yaml_or_json(folder / "batch_counts.json").get("pairs", {}))
    for pair, n in run.pairs.items():
        for lang in pair.split("->"):
            run.pair_sides[lang] = run.pair_sides.get(lang, 0) + n
    return run


def mean_curves(runs: list[Run]) -> dict:
    """Average the curves of runs (seeds) at the steps they all evaluated."""
    out = {}
    for key in set().union(*(r.curves for r in runs)):
        if not all(key in r.curves for r in runs):
            continue
        steps = set.intersection(*(set(r.curves[key]) for r in runs))
        out[key] = {s: float(np.mean([r.curves[key][s] for r in runs])) for s in sorted(steps)}
    return out


def language_shares(runs: list[Run]) -> dict[str, float]:
    """Each language's share of all query and passage sides of the runs' drawn pairs."""
    totals: dict[str, int] = defaultdict(int)
    for run in runs:
        for lang, n in run.pair_sides.items():
            totals[lang] += n
    total = sum(totals.values())
    return {lang: n / total for lang, n in totals.items()} if total else {}


def runs_by_label(runs: list[Run], settings) -> tuple[dict[str, list[Run]], list[Run]]:
    """({label: runs with curves in `settings`} in order of first appearance, runs without such curves).

    Raises DataError when two runs of one label have the same seed (one run given twice?).
    """
    grouped: dict[str, list[Run]] = {}
    skipped = []
    for run in runs:
        if not any(setting in settings for setting, _, _ in run.curves):
            skipped.append(run)
            continue
        same = [r for r in grouped.get(run.label, []) if r.seed is not None and r.seed == run.seed]
        if same:
            raise DataError(f"runs of '{run.label}' share seed {run.seed}: {same[0].path} and {run.path}",
                            path=str(run.path))
        grouped.setdefault(run.label, []).append(run)
    return grouped, skipped


# ----- language groups ----------------------------------------------------------------------
DERIVED_GROUPS = ("passages", "queries-only", "unseen")
OTHER_GROUP = "other"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def parse_language_groups(spec: str, option: str = "--language-groups") -> dict[str, list[str]]:
    """'NAME=l1,l2;NAME2=l3' -> {NAME: [l1, l2], NAME2: [l3]}; errors name `option` and the bad part."""
    groups: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        raise ConfigError(f"{option}: empty; expected 'NAME=LANG,LANG;NAME=LANG,...'")
    for part in parts:
        name, eq, langs_text = (x.strip() for x in part.partition("="))
        if not eq:
            raise ConfigError(f"{option}: group '{part}' has no '='; expected 'NAME=LANG,LANG,...'")
        if not _NAME.match(name):
            raise ConfigError(f"{option}: bad group name '{name}' in '{part}' (letters, digits, '_.+-')")
        if name in groups:
            raise ConfigError(f"{option}: group '{name}' is given twice")
        langs = [x.strip() for x in langs_text.split(",") if x.strip()]
        if not langs:
            raise ConfigError(f"{option}: group '{name}' lists no languages")
        for lang in langs:
            if lang in owner:
                raise ConfigError(f"{option}: language '{lang}' is in both '{owner[lang]}' and '{name}'")
            owner[lang] = name
        groups[name] = langs
    return groups


def complete_groups(groups: dict[str, list[str]], langs: list[str]) -> dict[str, list[str]]:
    """Keep the evaluated languages of each group (sorted), add `other` for the unnamed ones, drop empty groups."""
    named = {lang for members in groups.values() for lang in members}
    out = {name: sorted(set(members) & set(langs)) for name, members in groups.items()}
    out[OTHER_GROUP] = sorted(set(out.get(OTHER_GROUP, [])) | (set(langs) - named))
    return {name: members for name, members in out.items() if members}


def derive_language_groups(pairs_by_run: list[dict[str, int]], langs: list[str]) -> dict[str, list[str]]:
    """Groups of `langs` by how they occur in the runs' drawn pairs (see the module docstring)."""
    queries, passages = set(), set()
    for pairs in pairs_by_run:
        for pair, count in pairs.items():
            query, _, passage = pair.partition("->")
            if count and passage:
                queries.add(query)
                passages.add(passage)
    if not queries and not passages:
        return {"all": sorted(langs)} if langs else {}
    members = {"passages": [x for x in langs if x in passages],
               "queries-only": [x for x in langs if x in queries and x not in passages],
               "unseen": [x for x in langs if x not in queries and x not in passages]}
    return {name: sorted(members[name]) for name in DERIVED_GROUPS if members[name]}


def language_groups(pairs_by_run: list[dict[str, int]], langs: list[str], spec: str | None = None,
                    low_resource: list[str] | None = None) -> tuple[dict[str, list[str]], str]:
    """(groups, where they came from): `spec` if given, else the `low_resource` shorthand, else derived."""
    if spec:
        return complete_groups(parse_language_groups(spec), langs), "--language-groups"
    if low_resource:
        return complete_groups({"low-resource": list(low_resource)}, langs), "--low-resource"
    derived = derive_language_groups(pairs_by_run, langs)
    return derived, "batch_counts.json" if "all" not in derived else "none (no batch_counts.json pairs)"
