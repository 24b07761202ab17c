"""Candidates: every recipe of a sweep in every variant (plain, centred, merged, ...), compared as one field.

"What does training buy?" is not a question about recipes alone: a trained recipe has to beat the
cheapest thing that does the same job (the zero-shot backbone with its languages centred, say), and
a lever applied after training (centring, merging with the base) can change which recipe is best.
A *candidate* is one recipe group of the sweep read in one *variant*, where a variant is a pair of
the sweep's evaluation labels - the same data on the select and on the confirm split, evaluated
the variant's way (`debias:` / `merge_with_base:` entries). Its name is `group/variant`.

In a sweep file::

    candidates:
      variants:                       # variant -> the eval label of each split
        plain:  {select: dev-0-11,        confirm: dev-12-23}
        center: {select: dev-0-11-center, confirm: dev-12-23-center}
      references: [zero-shot/center]  # every candidate is compared with these (first: the verdict's)
      mono_floor: {candidate: zero-shot/plain, max_drop: 0.005}
      select_metric: settings.multi.map

Selection (on the select split only): among the candidates whose mono mAP (mean over seeds,
unrounded) is no more than `max_drop` below the floor candidate's, the best `select_metric`.
Confirmation (on the confirm split): the named candidate is confirmed if it keeps the mono
condition there and its interval of `select_metric` against the first reference excludes 0 in
its favour. Effects on the confirm split: every candidate against each reference and against its
own group's first variant (the plain model), per-query mAP per setting and rank distance, with the
two-level (seeds, question groups) interval of `aggregate.compare_runs`; Holm within a family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep.aggregate import Group, compare_runs, seed_runs
from mixlingual.stats import holm_adjust

SPLITS = ("select", "confirm")
TABLE = (("settings.mono.map", "mono mAP"), ("settings.cross.map", "cross mAP"),
         ("settings.multi.map", "multi mAP"), ("rank_distance.mean", "rank dist."),
         ("language_preference.mean", "lang. pref."))
TESTS = (("map", "mono"), ("map", "cross"), ("map", "multi"), ("rank_distance", "multi"))


@dataclass(frozen=True)
class CandidateSpec:
    """The `candidates:` section of a sweep file, checked against the sweep's eval labels."""

    variants: dict[str, dict[str, str]]
    references: tuple[str, ...]
    floor_candidate: str
    max_drop: float
    select_metric: str = "settings.multi.map"

    @classmethod
    def from_sweep(cls, section, labels: list[str], groups: list[str]) -> "CandidateSpec":
        if not isinstance(section, dict):
            raise ConfigError("candidates: expected a mapping with variants, references and mono_floor")
        unknown = set(section) - {"variants", "references", "mono_floor", "select_metric"}
        if unknown:
            raise ConfigError(f"candidates: unknown key(s) {sorted(unknown)}; known: variants, references, "
                              "mono_floor, select_metric")
        variants = section.get("variants")
        if not isinstance(variants, dict) or not variants:
            raise ConfigError("candidates.variants: expected {variant: {select: LABEL, confirm: LABEL}}")
        for name, splits in variants.items():
            if not isinstance(splits, dict) or set(splits) != set(SPLITS):
                raise ConfigError(f"candidates.variants.{name}: expected {{select: LABEL, confirm: LABEL}}")
            for split, label in splits.items():
                if label not in labels:
                    raise ConfigError(f"candidates.variants.{name}.{split}: no eval entry labelled {label!r}; "
                                      f"labels: {labels}")
        names = {f"{g}/{v}" for g in groups for v in variants}
        references = section.get("references") or []
        if isinstance(references, str):
            references = [references]
        floor = section.get("mono_floor") or {}
        for where, name in [("references", r) for r in references] + [("mono_floor.candidate", floor.get("candidate"))]:
            if name not in names:
                raise ConfigError(f"candidates.{where}: {name!r} is not a candidate (GROUP/VARIANT); "
                                  f"groups: {groups}, variants: {list(variants)}")
        max_drop = floor.get("max_drop", 0.005)
        if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or max_drop < 0:
            raise ConfigError(f"candidates.mono_floor.max_drop: expected a number >= 0, got {max_drop!r}")
        return cls(dict(variants), tuple(references), floor["candidate"], float(max_drop),
                   section.get("select_metric", "settings.multi.map"))

    def label(self, candidate: str, split: str) -> str:
        return self.variants[candidate.rsplit("/", 1)[1]][split]


def _stat(summary: dict, group: str, label: str, metric: str) -> dict | None:
    entry = summary.get(group, {}).get(label, {}).get(metric)
    return entry if entry and entry.get("n") and not math.isnan(entry["mean"]) else None


def candidate_table(spec: CandidateSpec, summary: dict, groups: list[Group]) -> dict:
    """{candidate: {split: {metric: mean_std}}} for the candidates evaluated on both splits."""
    table: dict = {}
    for group in groups:
        for variant in spec.variants:
            name = f"{group.name}/{variant}"
            rows = {split: {m: s for m, _ in TABLE if (s := _stat(summary, group.name, spec.label(name, split), m))}
                    for split in SPLITS}
            if all(rows[split] for split in SPLITS):
                table[name] = {**rows, "seeds": list(group.seeds)}
    return table


def select_candidate(spec: CandidateSpec, table: dict) -> dict:
    """Name the candidate on the select split; judge it on the confirm split (means only here;
    the interval is added by `confirm_verdict`)."""
    mono = "settings.mono.map"
    floor = table.get(spec.floor_candidate, {}).get("select", {}).get(mono)
    if floor is None:
        return {"best": None, "reason": f"floor candidate {spec.floor_candidate} has no select-split result"}
    threshold = floor["mean"] - spec.max_drop
    eligible = {n: r["select"][spec.select_metric]["mean"] for n, r in table.items()
                if r["select"].get(mono, {}).get("mean", -1) >= threshold and spec.select_metric in r["select"]}
    ranking = sorted(eligible, key=lambda n: -eligible[n])
    excluded = sorted(n for n in table if n not in eligible)
    best = ranking[0] if ranking else None
    result = {"metric": spec.select_metric, "floor": spec.floor_candidate, "max_drop": spec.max_drop,
              "mono_threshold_select": threshold, "eligible": eligible, "excluded_by_mono": excluded,
              "ranking": ranking, "best": best}
    if best is not None:
        floor_confirm = table[spec.floor_candidate]["confirm"][mono]["mean"]
        result["confirm"] = {"mono": table[best]["confirm"][mono]["mean"],
                             "mono_threshold": floor_confirm - spec.max_drop,
                             "keeps_mono": table[best]["confirm"][mono]["mean"] >= floor_confirm - spec.max_drop,
                             "value": table[best]["confirm"].get(spec.select_metric, {}).get("mean")}
    return result


def compare_candidates(spec: CandidateSpec, groups: list[Group], table: dict, *,
                       n_resamples: int, seed: int = 0) -> list[dict]:
    """Effects on the confirm split: each candidate minus each reference and minus its own group's
    plain variant (the first one), per test of TESTS; Holm within (reference, metric, setting)."""
    by_name = {g.name: g for g in groups}
    plain = next(iter(spec.variants))
    loaded: dict = {}

    def runs(candidate: str, metric: str, setting: str):
        group, _ = candidate.rsplit("/", 1)
        key = (candidate, metric)
        if key not in loaded:
            only = ("multi",) if metric == "rank_distance" else None
            loaded[key] = seed_runs(by_name[group], spec.label(candidate, "confirm"), metric, only)
        return loaded[key].get(setting)

    rows: list[dict] = []
    for name in table:
        group = name.rsplit("/", 1)[0]
        against = list(dict.fromkeys(list(spec.references) + [f"{group}/{plain}"]))
        for reference in against:
            # never against itself, and the reference's own plain model only once (as a candidate
            # against the reference, not again as the reference against its plain)
            if reference == name or reference not in table or (name in spec.references and reference in table
                                                                 and name.rsplit("/", 1)[0] == reference.rsplit("/", 1)[0]):
                continue
            for metric, setting in TESTS:
                base, other = runs(reference, metric, setting), runs(name, metric, setting)
                if base is None or other is None:
                    continue
                result = compare_runs(base, other, n_resamples=n_resamples, seed=seed)
                rows.append({"candidate": name, "reference": reference, "kind": "reference"
                             if reference in spec.references else "own plain", "metric": metric,
                             "setting": setting, **result})
    families: dict[tuple, list[dict]] = {}
    for row in rows:
        families.setdefault((row["reference"], row["metric"], row["setting"]), []).append(row)
    for subset in families.values():
        for row, adjusted in zip(subset, holm_adjust([r["p_value"] for r in subset])):
            row["p_holm"] = adjusted
    return rows


def confirm_verdict(spec: CandidateSpec, selection: dict, comparisons: list[dict]) -> dict:
    """Confirmed: keeps the mono condition on the confirm split and its select-metric interval
    against the first reference excludes 0 in its favour."""
    best = selection.get("best")
    if best is None or not spec.references:
        return {"confirmed": False, "why": "nothing selected" if best is None else "no reference"}
    setting = spec.select_metric.split(".")[1]
    metric = spec.select_metric.split(".")[2]
    row = next((c for c in comparisons if c["candidate"] == best and c["reference"] == spec.references[0]
                and c["metric"] == metric and c["setting"] == setting), None)
    if best == spec.references[0]:
        return {"confirmed": False, "why": f"{best} is the reference itself"}
    if row is None:
        return {"confirmed": False, "why": f"no comparison of {best} with {spec.references[0]}"}
    keeps = selection["confirm"]["keeps_mono"]
    excludes = row["ci_low"] > 1e-9   # above float rounding of equal scores, below any effect worth reporting
    why = (f"mono {'kept' if keeps else 'not kept'} on the confirm split; {spec.select_metric} - "
           f"{spec.references[0]}: {row['mean_diff']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]")
    return {"confirmed": bool(keeps and excludes), "keeps_mono": keeps, "interval_excludes_0": excludes,
            "effect": row["mean_diff"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "why": why}


def plot_candidates(table: dict, split: str, path: Path) -> bool:
    """Mono (x) against multi (y) mAP of every candidate, colour = rank distance, front joined."""
    from mixlingual.experiments.sweep.plots import finish_mono_multi_plot, pareto_front  # sets the Agg backend first
    import matplotlib.pyplot as plt

    points = {n: (r[split]["settings.mono.map"]["mean"], r[split]["settings.multi.map"]["mean"],
                  r[split].get("rank_distance.mean", {}).get("mean", float("nan")))
              for n, r in table.items() if {"settings.mono.map", "settings.multi.map"} <= set(r[split])}
    if not points:
        return False
    front = pareto_front({n: (x, y) for n, (x, y, _) in points.items()})
    fig, ax = plt.subplots(figsize=(8, 6))
    xs, ys, cs = zip(*points.values())
    sc = ax.scatter(xs, ys, c=cs, cmap="viridis_r", s=40, edgecolors="k", linewidths=0.4)
    fig.colorbar(sc, ax=ax, label="rank distance (lower = less bias)")
    for name, (x, y, _) in points.items():
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="tab:red",
            lw=0.8, label="Pareto front")
    finish_mono_multi_plot(fig, ax, f"every candidate, {split} split (mean over seeds)", path)
    return True


def _mean_std(entry: dict | None) -> str:
    """'.612 ± .004' (rank distance: '182.1 ± 5.3'); '-' when missing."""
    if not entry:
        return "-"
    if abs(entry["mean"]) >= 10:
        return f"{entry['mean']:.1f} ± {entry['std']:.1f}"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}".replace("0.", ".")


def _effect(row: dict | None) -> str:
    """'+.035 [+.028, +.042]*' - `*` marks an interval that excludes 0; '-' when missing."""
    if row is None:
        return "-"
    star = "*" if row["ci_low"] > 0 or row["ci_high"] < 0 else ""
    if row["metric"] == "rank_distance":
        return f"{row['mean_diff']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}]{star}"
    values = [f"{row[k]:+.3f}".replace("0.", ".") for k in ("mean_diff", "ci_low", "ci_high")]
    return f"{values[0]} [{values[1]}, {values[2]}]{star}"


def render_candidates(spec: CandidateSpec, table: dict, selection: dict, verdict: dict,
                      comparisons: list[dict], plots: list[str]) -> list[str]:
    """The report section: selection and verdict, the confirm-split table (and the select metric
    on the select split), the effects against the references and each candidate's plain model."""
    lines = ["## Candidates: every recipe in every variant", ""]
    best = selection.get("best")
    lines.append(f"Named on the select split: **{best}** (best {spec.select_metric} among candidates whose mono "
                 f"mAP is at most {spec.max_drop} below {spec.floor_candidate}: threshold "
                 f"{selection.get('mono_threshold_select', float('nan')):.4f}; excluded by it: "
                 f"{', '.join(selection.get('excluded_by_mono', [])) or 'none'}).")
    lines.append(f"Confirmed on the confirm split: **{'yes' if verdict.get('confirmed') else 'no'}** - "
                 f"{verdict.get('why', '')}.")
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    lines += ["Confirm split, mean ± std over seeds (last column: the select split, which named the candidate):", "",
              "| candidate | seeds | mono mAP | cross mAP | multi mAP | rank distance | lang. pref. | "
              f"{spec.select_metric} (select) |", "|---|---|---|---|---|---|---|---|"]
    for name, row in table.items():
        cells = [_mean_std(row["confirm"].get(metric)) for metric, _ in TABLE]
        lines.append(f"| {name} | {len(row['seeds'])} | " + " | ".join(cells)
                     + f" | {_mean_std(row['select'].get(spec.select_metric))} |")
    by_key = {(c["candidate"], c["reference"], c["setting"], c["metric"]): c for c in comparisons}
    lines += ["", "Effects on the confirm split (candidate - vs; 95% interval over seeds and question groups, "
              "`*` = excludes 0; p from the same draws, Holm within vs x metric x setting, in summary.json):", "",
              "| candidate | vs | mono mAP | cross mAP | multi mAP | rank distance |", "|---|---|---|---|---|---|"]
    pairs = dict.fromkeys((c["candidate"], c["reference"]) for c in comparisons)
    for name, reference in pairs:
        cells = [_effect(by_key.get((name, reference, setting, metric))) for metric, setting in TESTS]
        lines.append(f"| {name} | {reference} | " + " | ".join(cells) + " |")
    return lines + [""]


def study_candidates(section, groups: list[Group], summary: dict, labels: list[str], out_dir: Path, *,
                     n_resamples: int) -> tuple[dict, list[str]]:
    """Everything of the candidates section: (summary entry, report lines)."""
    spec = CandidateSpec.from_sweep(section, labels, [g.name for g in groups])
    table = candidate_table(spec, summary, groups)
    selection = select_candidate(spec, table)
    comparisons = compare_candidates(spec, groups, table, n_resamples=n_resamples)
    verdict = confirm_verdict(spec, selection, comparisons)
    plots = [f"plots/candidates-{split}.png" for split in SPLITS
             if plot_candidates(table, split, out_dir / "plots" / f"candidates-{split}.png")]
    entry = {"table": table, "selection": selection, "verdict": verdict, "comparisons": comparisons,
             "references": list(spec.references), "variants": spec.variants}
    return entry, render_candidates(spec, table, selection, verdict, comparisons, plots)
