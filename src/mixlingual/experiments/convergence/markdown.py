"""convergence.md from a convergence report (convergence_report.build_report).

Per (setting, metric): one table, rows = language groups (bold, mean over the group's languages)
each followed by its languages, two columns per recipe: steps to the target and final value,
as "mean [low, high]" over seeds ("mean (1 seed)" when there is no interval), marked ↓ where a
seed's curve ended below its start; then one table of reference - other differences per group.
"""

from __future__ import annotations


DECLINED = " ↓"   # some seed ended below its first evaluated value: its steps to target are its first step


def _number(x: float, kind: str, signed: bool = False) -> str:
    if kind == "final":
        return f"{x:+.3f}" if signed else f"{x:.3f}"
    text = f"{x:+.1f}" if signed else f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def cell(summary: dict | None, kind: str, signed: bool = False) -> str:
    """'mean [low, high]', 'mean (1 seed)', or '-' when there is no value."""
    if not summary or summary.get("mean") is None:
        return "-"
    text = _number(summary["mean"], kind, signed)
    if summary.get("low") is not None:
        text += f" [{_number(summary['low'], kind, signed)}, {_number(summary['high'], kind, signed)}]"
    elif "n_seeds" in summary:
        text += f" ({summary['n_seeds']} seed{'s' if summary['n_seeds'] != 1 else ''})"
    else:
        text += " (no interval)"
    if summary.get("n_missing"):
        text += f" ({summary['n_missing']} seed(s) without a target)"
    return text


def _declined(lang_rows: dict, label: str, langs: list[str]) -> str:
    """The ↓ mark when a seed of `label` ended below its start in any of `langs`."""
    return DECLINED if any((lang_rows.get((label, x)) or {}).get("seeds_ending_below_start") for x in langs) else ""


def _recipe_table(report: dict, setting: str, metric: str, labels: list[str]) -> list[str]:
    langs = {(r["strategy"], r["lang"]): r for r in report["languages"]
             if r["setting"] == setting and r["metric"] == metric}
    groups = {(r["strategy"], r["group"]): r for r in report["groups"]
              if r["setting"] == setting and r["metric"] == metric}
    lines = ["| group / language | " + " | ".join(f"{x} steps | {x} final" for x in labels) + " |",
             "|---|" + "---|---|" * len(labels)]
    for name, members in report["language_groups"].items():
        rows = [(f"**{name}** ({', '.join(members)})", groups, name, members)]
        rows += [(lang, langs, lang, [lang]) for lang in members]
        for title, table, key, covered in rows:
            found = {x: table.get((x, key)) or {} for x in labels}
            cells = [f"{cell(found[x].get('steps_to_target'), 'steps')}{_declined(langs, x, covered)} | "
                     f"{cell(found[x].get('final'), 'final')}" for x in labels]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def _difference_table(report: dict, setting: str, metric: str, labels: list[str]) -> list[str]:
    reference = report["reference"]
    diffs = {(d["minus"], d["name"]): d for d in report["differences"]
             if d["level"] == "group" and d["setting"] == setting and d["metric"] == metric}
    others = [x for x in labels if x != reference and any(key[0] == x for key in diffs)]
    if not others:
        return []
    lines = ["", f"{reference} minus each recipe, per group (mean [95% interval] over seeds; "
             "paired by seed where both ran the same seeds):", "",
             "| group | " + " | ".join(f"{reference} - {x} steps | {reference} - {x} final" for x in others) + " |",
             "|---|" + "---|---|" * len(others)]
    for name in report["language_groups"]:
        cells = [f"{cell((diffs.get((x, name)) or {}).get('steps_to_target'), 'steps', True)} | "
                 f"{cell((diffs.get((x, name)) or {}).get('final'), 'final', True)}" for x in others]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: dict) -> str:
    """The whole convergence.md: header, one recipe table and one difference table per (setting, metric), plots."""
    labels = [r["name"] for r in report["recipes"]]
    recipes = "; ".join(f"{r['name']}: {len(r['seeds'])} seed(s), "
                        f"{'/'.join(map(str, r['examples_per_step']))} examples per step" for r in report["recipes"])
    lines = ["# Convergence", "",
             f"Steps until a language's dev value first reaches {report['fraction']:.0%} of its final value, "
             "on each seed's own curve; final = last evaluated value. Cells: mean over seeds "
             f"[{report['interval']}]. Group rows: per seed the mean over the group's languages, then over "
             "seeds. Examples to the target (steps x examples per step) and the seed-averaged-curve numbers "
             "are in convergence.json.", "",
             f"Recipes - {recipes or 'none'}.",
             f"Language groups from {report['language_groups_source']}."]
    if report.get("unfinished_runs"):
        lines.append(f"**Unfinished** (no summary.json; final = latest value): {', '.join(report['unfinished_runs'])}.")
    if report.get("runs_without_curves"):
        lines.append(f"Skipped (no dev curves): {len(report['runs_without_curves'])} run(s).")
    for setting in report["settings"]:
        for metric in report["metrics"]:
            if not any(r["setting"] == setting and r["metric"] == metric for r in report["languages"]):
                continue
            table = _recipe_table(report, setting, metric, labels)
            lines += ["", f"## {setting} {metric}", ""] + table
            if any(DECLINED in line for line in table):
                lines += ["", f"{DECLINED.strip()}: at least one seed ended below its first evaluated value (the "
                          "curve fell), so its steps to target are its first step."]
            lines += _difference_table(report, setting, metric, labels)
    lines += [f"\n![{p}]({p})" for p in report.get("plots", [])]
    return "\n".join(lines) + "\n"
