"""Write a convergence report: convergence.json (everything), convergence.md (tables) and curve plots.

convergence.json holds:

* `recipes`: per recipe its seeds, examples per optimizer step and run folders;
* `language_groups` (+ `language_groups_source`: `--language-groups`, `--low-resource` or
  `batch_counts.json`);
* `languages`: per (recipe, setting, language, metric) `steps_to_target`, `examples_to_target`
  and `final`, each {mean, low, high, n_seeds, n_missing, per_seed} (low/high: 95% interval
  over seeds, None with one seed), plus `steps_on_mean_curve` / `examples_on_mean_curve` /
  `final_on_mean_curve` from the seed-averaged curve and `train_share`;
* `groups`: the same three quantities per (recipe, setting, group, metric), from the per-seed
  means over the group's languages;
* `differences`: reference recipe minus each other recipe, per group and per language, each
  quantity {mean, low, high, paired, n_seeds_a, n_seeds_b};
* `runs_without_curves`: runs given but without dev curves in the reported settings (skipped);
* `unfinished_runs`: runs without summary.json (still training): their "final" is their latest value.
"""

from __future__ import annotations

import json
from pathlib import Path

from mixlingual.errors import ConfigError
from mixlingual.experiments import convergence_stats as stats
from mixlingual.experiments.convergence import METRICS, language_shares, load_run, mean_curves, runs_by_label
from mixlingual.experiments.convergence_groups import language_groups as resolve_groups
from mixlingual.experiments.convergence_summary import (difference_rows, group_rows, group_seed_values,
                                                        language_rows, per_seed_values, seed_key)
from mixlingual.io import write_atomic

INTERVAL = (f"{stats.LEVEL:.0%} percentile bootstrap over seeds ({stats.RESAMPLES} resamples, "
            f"seed {stats.BOOTSTRAP_SEED}); none with one seed")


def build_report(runs: list, *, language_groups: str | None = None, low_resource=(), reference: str | None = None,
                 fraction: float = 0.95, settings=("multi",)) -> dict:
    """Everything convergence.json holds (see the module docstring), from loaded runs."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"--fraction: expected a share of the final value in (0, 1], got {fraction}")
    grouped, skipped = runs_by_label(runs, settings)
    used = [run for members in grouped.values() for run in members]
    labels = list(grouped)
    langs = sorted({lang for run in used for setting, lang, _ in run.curves if setting in settings})
    groups, source = resolve_groups([run.pairs for run in used], langs, language_groups, list(low_resource))
    if reference is None:
        reference = "hybrid" if "hybrid" in grouped else (labels[0] if labels else None)
    elif reference not in grouped:
        raise ConfigError(f"--reference: no recipe '{reference}' among {', '.join(labels) or 'none'}")
    values = per_seed_values(grouped, settings, fraction)
    per_step = {label: members[0].examples_per_step for label, members in grouped.items()}
    curves = {label: mean_curves(members) for label, members in grouped.items()}
    group_values = group_seed_values(values, groups)
    recipes = [{"name": label, "seeds": [seed_key(r) for r in members],
                "examples_per_step": sorted({r.examples_per_step for r in members}),
                "runs": [str(r.path) for r in members]} for label, members in grouped.items()]
    return {"fraction": fraction, "settings": list(settings), "metrics": list(METRICS), "interval": INTERVAL,
            "recipes": recipes, "reference": reference, "language_groups": groups,
            "language_groups_source": source,
            "languages": language_rows(values, groups, language_shares(used), curves, per_step, fraction),
            "groups": group_rows(group_values, groups),
            "differences": difference_rows(values, group_values, reference, labels) if reference else [],
            "runs": [str(r.path) for r in runs], "runs_without_curves": [str(r.path) for r in skipped],
            "unfinished_runs": [str(r.path) for r in used if not r.finished]}


def write_convergence_report(run_dirs, out_dir: Path, *, language_groups: str | None = None, low_resource=(),
                             reference: str | None = None, fraction: float = 0.95, settings=("multi",)) -> dict:
    """Load the runs, write convergence.json, convergence.md and curves-<setting>-<metric>.png; return the report."""
    from mixlingual.experiments.convergence_markdown import render_markdown
    from mixlingual.experiments.convergence_plots import plot_group_bands

    runs = [load_run(d) for d in run_dirs]
    report = build_report(runs, language_groups=language_groups, low_resource=low_resource, reference=reference,
                          fraction=fraction, settings=settings)
    grouped, _ = runs_by_label(runs, settings)
    out_dir = Path(out_dir)
    plots = []
    for setting in settings:
        for metric in METRICS:
            path = out_dir / f"curves-{setting}-{metric}.png"
            if plot_group_bands(grouped, setting, metric, report["language_groups"], path):
                plots.append(path.name)
    report["plots"] = plots
    write_atomic(out_dir / "convergence.json", json.dumps(report, indent=2))
    write_atomic(out_dir / "convergence.md", render_markdown(report))
    return report
