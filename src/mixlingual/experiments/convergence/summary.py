"""Convergence numbers per seed, summarized per language, per language group and between recipes.

Each seed's own curve gives its steps-to-target (first evaluated step reaching `fraction` x that
seed's last value), examples-to-target (steps x that run's examples per step) and final value
(its last evaluated value). Those per-seed numbers are then summarized over seeds
(`mixlingual.stats.seed_summary`: mean and 95% interval over seeds):

* per (recipe, setting, language, metric) - `language_rows`;
* per (recipe, setting, language group, metric) - `group_rows`: for each seed, the mean over the
  group's languages, then mean and interval over seeds;
* reference recipe minus each other recipe, per group and per language - `difference_rows`.

A seed whose final value is below its first evaluated value reaches "95% of the end" at its first
step; such seeds are listed per language row in `seeds_ending_below_start`.

Language rows also keep the old single number, computed on the seed-averaged curve
(`steps_on_mean_curve`: curves averaged step by step over seeds, then the first step reaching
`fraction` x the averaged last value); it can differ from the mean of the per-seed steps.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from mixlingual.stats import seed_difference, seed_summary

QUANTITIES = ("steps_to_target", "examples_to_target", "final")


def steps_to_fraction(curve: dict[int, float], fraction: float = 0.95) -> int | None:
    """First step whose value is >= fraction x the last value (None if the last value <= 0)."""
    steps = sorted(curve)
    if not steps or curve[steps[-1]] <= 0:
        return None
    target = fraction * curve[steps[-1]]
    return next(s for s in steps if curve[s] >= target)


def seed_key(run) -> str:
    """The run's training seed as text (pairs recipes by seed), else its folder (never pairs)."""
    return str(run.seed) if run.seed is not None else str(run.path)


def per_seed_values(runs_by_label: dict[str, list], settings, fraction: float) -> dict:
    """{(label, setting, lang, metric): {quantity: {seed: value}}} from each seed's own curve."""
    out: dict = defaultdict(lambda: {q: {} for q in (*QUANTITIES, "final_step", "start")})
    for label, runs in runs_by_label.items():
        for run in runs:
            for (setting, lang, metric), curve in run.curves.items():
                if setting not in settings or not curve:
                    continue
                entry, key, last = out[(label, setting, lang, metric)], seed_key(run), max(curve)
                step = steps_to_fraction(curve, fraction)
                entry["steps_to_target"][key] = step
                entry["examples_to_target"][key] = None if step is None else step * run.examples_per_step
                entry["final"][key] = curve[last]
                entry["final_step"][key] = last
                entry["start"][key] = curve[min(curve)]
    return dict(out)


def language_rows(values: dict, groups: dict[str, list[str]], shares: dict[str, float],
                  mean_curves: dict, examples_per_step: dict[str, int], fraction: float) -> list[dict]:
    """One row per (recipe, setting, language, metric), in group order then language order."""
    group_of = {lang: name for name, members in groups.items() for lang in members}
    order = {name: i for i, name in enumerate(groups)}
    rows = []
    for (label, setting, lang, metric), entry in values.items():
        curve = mean_curves.get(label, {}).get((setting, lang, metric), {})
        step = steps_to_fraction(curve, fraction) if curve else None
        rows.append({"strategy": label, "setting": setting, "lang": lang, "group": group_of.get(lang),
                     "metric": metric, "train_share": shares.get(lang, 0.0) if shares else None,
                     **{q: seed_summary(entry[q]) for q in QUANTITIES},
                     "final_steps": sorted(set(entry["final_step"].values())),
                     "seeds_ending_below_start": sorted(k for k, v in entry["final"].items() if v < entry["start"][k]),
                     "steps_on_mean_curve": step,
                     "examples_on_mean_curve": None if step is None else step * examples_per_step[label],
                     "final_on_mean_curve": curve[max(curve)] if curve else None})
    rows.sort(key=lambda r: (order.get(r["group"], len(order)), r["setting"], r["lang"], r["metric"]))
    return rows


def group_per_seed(per_seed_by_lang: dict[str, dict]) -> dict:
    """{lang: {seed: value}} -> {seed: mean over the languages with a value for that seed (None if none)}."""
    seeds = sorted({s for values in per_seed_by_lang.values() for s in values}, key=str)
    out = {}
    for seed in seeds:
        present = [v[seed] for v in per_seed_by_lang.values() if v.get(seed) is not None]
        out[seed] = float(np.mean(present)) if present else None
    return out


def group_seed_values(values: dict, groups: dict[str, list[str]]) -> dict:
    """{(label, setting, group, metric): {quantity: {seed: mean over the group's languages}}}."""
    out = {}
    for label, setting, metric in sorted({(k[0], k[1], k[3]) for k in values}):
        for name, members in groups.items():
            entries = {lang: values[(label, setting, lang, metric)] for lang in members
                       if (label, setting, lang, metric) in values}
            if entries:
                out[(label, setting, name, metric)] = {
                    q: group_per_seed({lang: e[q] for lang, e in entries.items()}) for q in QUANTITIES}
    return out


def group_rows(group_values: dict, groups: dict[str, list[str]]) -> list[dict]:
    """One row per (recipe, setting, language group, metric): per-seed group means summarized over seeds."""
    order = {name: i for i, name in enumerate(groups)}
    rows = [{"strategy": label, "setting": setting, "group": name, "langs": groups[name], "metric": metric,
             **{q: seed_summary(per_seed) for q, per_seed in entry.items()}}
            for (label, setting, name, metric), entry in group_values.items()]
    rows.sort(key=lambda r: (order[r["group"]], r["setting"], r["metric"]))
    return rows


def difference_rows(values: dict, group_values: dict, reference: str, labels: list[str]) -> list[dict]:
    """reference - other for every other recipe, per group ("group") and per language ("language")."""
    rows = []
    for level, table in (("group", group_values), ("language", values)):
        for (label, setting, name, metric), entry in table.items():
            if label != reference:
                continue
            for other in labels:
                other_entry = table.get((other, setting, name, metric))
                if other == reference or other_entry is None:
                    continue
                rows.append({"level": level, "name": name, "setting": setting, "metric": metric,
                             "recipe": reference, "minus": other,
                             **{q: seed_difference(entry[q], other_entry[q]) for q in QUANTITIES}})
    return rows
