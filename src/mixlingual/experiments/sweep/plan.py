"""`mixlingual sweep`: a grid of training runs, each evaluated, aggregated over seeds and compared.

    mixlingual sweep CONFIG.yaml --grid 'sampling.alpha=0,0.5,1' --seeds 3 --out DIR \
        --eval 'xquad-r:../shared/data/xquad-r-dev' [--dry-run]

CONFIG.yaml is either a training config (the base of every cell) or a sweep file with a top-level
`sweep:` mapping (base_config, seeds, set, grid, recipes, eval, baseline, x_key; see
configs/sweeps/ and docs/experiments.md); command-line options add to / override the file. Every
cell runs `mixlingual train` and `mixlingual evaluate` as subprocesses (see `cells.py`); a finished
cell is never redone, so rerunning the same command after an interruption resumes the sweep.
Outputs: DIR/cells/<slug>/..., DIR/summary.json, DIR/report.md and DIR/plots/*.png.

This module is the command and its plan: the options, the sweep file merged with them into a
`CellPlan` and its cells (checked before any training), and running the cells; the rest of the
study has a module each in this folder - `grid.py` (cells of a grid / recipes), `cells.py` (one
resumable cell), `aggregate.py` (means over seeds, clustered comparisons), `selection.py` and
`split_content.py` (select on one split, confirm on a disjoint one), `candidates.py` (recipes x
variants), `report.py` (summary.json, report.md, plots via `plots.py`) and `tables.py` (the
README's findings tables from a summary.json, `mixlingual tables`).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep.cells import (
    CellPlan, CommandRunner, EvalSpec, eval_command, is_complete, run_cell, subprocess_runner,
    train_command)
from mixlingual.experiments.sweep.grid import Cell, expand_cells, format_override, parse_grid_spec, parse_value
from mixlingual.experiments.sweep.report import write_outputs
from mixlingual.experiments.sweep.selection import check_roles, check_select_metric, default_mode
from mixlingual.io import write_atomic

SWEEP_KEYS = {"base_config", "seeds", "set", "grid", "recipes", "eval", "baseline", "x_key", "metric",
              "cells_dir", "select_metric", "select_mode", "recipe_seeds", "candidates"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="training config YAML, or a sweep file (top-level 'sweep:')")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="values of one config key; repeat for a product. Lists: 'k=[a,b,c],[d,e,f]' "
                             "or 'k=[a,b,c];[d,e,f]'")
    parser.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 (default 1, or the file's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override applied to every cell (e.g. train.max_steps=200)")
    parser.add_argument("--eval", action="append", default=[], metavar="[LABEL=]BENCH:PATH",
                        help="benchmark to evaluate every cell on (repeatable)")
    parser.add_argument("--eval-arg", action="append", default=[], metavar="ARG",
                        help="extra argument passed to every `mixlingual evaluate` call (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="sweep folder (cells, summary, report)")
    parser.add_argument("--baseline", help="group(s) the others are tested against, comma-separated; the first "
                                           "gives the report's p columns (default: the first group)")
    parser.add_argument("--x-key", help="numeric grid key for the metric-vs-ratio plot (default: first numeric)")
    parser.add_argument("--metric", default="map", help="per-query metric(s) for the clustered comparisons, comma-separated (default map; "
                             "e.g. map,r@1,mrr@10); the first gives the report's p columns")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="randomization-test resamples")
    parser.add_argument("--seed-key", default="train.seed", help="config key that takes the seed (default train.seed)")
    parser.add_argument("--cells-dir", type=Path,
                        help="folder of the cells, shareable between sweeps (default OUT/cells; overrides the file)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cells run at once (each is its own process; give each train.threads=1 on a CPU)")
    parser.add_argument("--dry-run", action="store_true", help="print the cells and commands, run nothing")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip resolving every cell's config up front (for a non-mixlingual train command)")
    parser.add_argument("--aggregate-only", action="store_true", help="only (re)build summary and report")
    parser.add_argument("--convergence", action="store_true",
                        help="also write the convergence report of every finished cell (DIR/convergence/)")
    parser.add_argument("--language-groups", help="language groups for --convergence, 'NAME=l1,l2;NAME=l3' "
                        "(default: from the cells' batch_counts.json; see `mixlingual convergence`)")
    parser.add_argument("--low-resource", default="", help="--convergence: shorthand for "
                        "--language-groups 'low-resource=LIST' (comma-separated)")


def load_sweep_file(path: Path) -> dict:
    """The `sweep:` mapping of a sweep file, or {'base_config': path} for a plain training config."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or "sweep" not in data:
        return {"base_config": str(path)}
    sweep = data["sweep"]
    if not isinstance(sweep, dict):
        raise ConfigError(f"{path}: 'sweep' must be a mapping")
    unknown = set(sweep) - SWEEP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key(s) {sorted(unknown)}; known: {sorted(SWEEP_KEYS)}")
    if "base_config" not in sweep:
        raise ConfigError(f"{path}: sweep.base_config is required")
    return sweep


def build_plan(args: argparse.Namespace) -> tuple[CellPlan, list[Cell], dict]:
    """Merge the sweep file with the command line into a plan and its cells."""
    sweep = load_sweep_file(args.config)
    grid = [(k, v if isinstance(v, list) else [v]) for k, v in (sweep.get("grid") or {}).items()]
    grid += [parse_grid_spec(spec) for spec in args.grid]
    seeds_opt = args.seeds if args.seeds is not None else sweep.get("seeds", 1)
    seeds = list(seeds_opt) if isinstance(seeds_opt, list) else list(range(int(seeds_opt)))
    common = dict(sweep.get("set") or {})
    for spec in args.set:
        key, eq, value = spec.partition("=")
        if not eq:
            raise ConfigError(f"--set '{spec}' must look like key=value")
        common[key.strip()] = parse_value(value, key=key.strip())
    base_config = Path(sweep["base_config"])
    if not base_config.exists():
        raise ConfigError(f"base_config: {base_config} does not exist")
    base_eval = base_eval_config(base_config, common)
    evals = [EvalSpec.from_entry(s) for s in list(sweep.get("eval") or []) + args.eval] \
        or default_evals(base_eval)
    check_evals(evals)
    plan = CellPlan(base_config=base_config, out_dir=args.out, evals=evals,
                    common_sets=common, seed_key=args.seed_key, eval_args=list(args.eval_arg),
                    cells_dir=getattr(args, "cells_dir", None) or (Path(sweep["cells_dir"]) if sweep.get("cells_dir") else None))
    cells = expand_cells(grid, recipes=sweep.get("recipes"), seeds=seeds)
    cells = limit_recipe_seeds(cells, sweep.get("recipe_seeds"), seeds)
    names = {c.group for c in cells}
    for spec in evals:
        unknown = sorted(set(spec.groups or ()) - names)
        if unknown:
            raise ConfigError(f"eval {spec.label}: groups {unknown} are not in this sweep; groups: {sorted(names)}")
    options = {"baseline": args.baseline or sweep.get("baseline"), "x_key": args.x_key or sweep.get("x_key"),
               "metric": parse_metrics(args.metric if args.metric != "map" else sweep.get("metric", "map")),
               "grid_keys": [k for k, _ in grid], "candidates": sweep.get("candidates"),
               **selection_options(sweep, base_eval)}
    if options["candidates"] is not None:   # checked now, so a typo fails before any training
        from mixlingual.experiments.sweep.candidates import CandidateSpec

        CandidateSpec.from_sweep(options["candidates"], [e.label for e in evals], sorted(names))
    return plan, cells, options


def limit_recipe_seeds(cells: list[Cell], recipe_seeds: dict | None, seeds: list[int]) -> list[Cell]:
    """Keep the first N of the sweep's seeds for the recipes named in `recipe_seeds: {name: N}`.

    Side recipes of a powered comparison (say hybrid alpha .25 beside the five-seed X-X / X-Y /
    hybrid .5) can run on fewer seeds; raising N later adds cells, and the ones already run are
    reused (a cell's identity does not include N)."""
    if not recipe_seeds:
        return cells
    if not isinstance(recipe_seeds, dict):
        raise ConfigError("recipe_seeds: expected a mapping {recipe name: number of seeds}")
    recipes = {c.recipe for c in cells}
    for name, count in recipe_seeds.items():
        if name not in recipes:
            raise ConfigError(f"recipe_seeds.{name}: no such recipe; recipes: {sorted(recipes)}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(seeds):
            raise ConfigError(f"recipe_seeds.{name}: expected a whole number from 1 to {len(seeds)} "
                              f"(the sweep's seeds), got {count!r}")
    kept = {name: set(seeds[:count]) for name, count in recipe_seeds.items()}
    return [c for c in cells if c.recipe not in kept or c.seed in kept[c.recipe]]


def parse_metrics(value) -> list[str]:
    """`metric:` of a sweep (or --metric): one name, a comma-separated string or a list."""
    from mixlingual.experiments.sweep.aggregate import PER_QUERY_FIELDS

    names = [m.strip() for m in value.split(",")] if isinstance(value, str) else [str(m) for m in (value or [])]
    if not names or not all(names):
        raise ConfigError(f"metric: expected one or more per-query metric names, got {value!r}")
    unknown = [m for m in names if m not in PER_QUERY_FIELDS]
    if unknown:
        raise ConfigError(f"metric: unknown per-query metric(s) {unknown}; known: {sorted(PER_QUERY_FIELDS)}")
    return names


def base_eval_config(base_config: Path, common: dict):
    """The `eval` section of the base config with the sweep's common --set applied; None when it
    does not load as a mixlingual config (a foreign train command under --no-validate)."""
    from mixlingual.training.config import load_config

    try:
        return load_config(base_config, [f"{k}={format_override(v)}" for k, v in common.items()]).eval
    except ConfigError:
        return None


def default_evals(base_eval) -> list[EvalSpec]:
    """Without --eval or a sweep `eval:` list, every cell is evaluated on the base config's own
    `eval.data` (its loader options and `eval.langs` included); with neither, refuse before any
    training: a sweep without evaluations trains every cell and reports nothing."""
    ref = base_eval.data if base_eval is not None else None
    if ref is None or not ref.name:
        raise ConfigError("nothing to evaluate the cells on: add --eval 'benchmark:path' (or an 'eval:' list "
                          "in the sweep file), or set eval.data in the base config")
    options = dict(ref.options)
    args: list[str] = []
    if "candidate" in options:
        args += ["--candidate", str(options.pop("candidate"))]
    langs = options.pop("langs", None) or base_eval.langs
    if langs:
        args += ["--langs", ",".join(langs)]
    return [EvalSpec(ref.name, ref.name, ref.path, options=options, args=tuple(args))]


def check_evals(evals: list[EvalSpec]) -> None:
    """Unique labels, loader options the benchmark takes, and select / confirm on disjoint data."""
    from mixlingual.evaluation.cli import check_data_options

    if len({e.label for e in evals}) != len(evals):
        raise ConfigError("two --eval entries share a label; name them 'label=bench:path'")
    for spec in evals:
        try:
            check_data_options(spec.benchmark, spec.options)
        except ConfigError as err:
            raise ConfigError(f"eval {spec.label}: options: {err}") from err
    check_roles(evals)


def selection_options(sweep: dict, base_eval) -> dict:
    """The metric the best recipe is selected by: the sweep's `select_metric` / `select_mode`, by
    default the base config's `eval.metric` / `eval.mode` (what picks its best checkpoint)."""
    metric = sweep.get("select_metric") or (base_eval.metric if base_eval is not None else "settings.multi.map")
    if "select_mode" in sweep:
        mode = sweep["select_mode"]
    elif "select_metric" in sweep or base_eval is None:
        mode = default_mode(metric)
    else:
        mode = base_eval.mode
    check_select_metric(metric, mode)
    return {"select_metric": metric, "select_mode": mode}


def validate_cells(plan: CellPlan, cells: list[Cell]) -> None:
    """Resolve every distinct cell config now (no model work), so a bad key or value in a recipe
    or grid fails before hours of training; the error names the cell."""
    from mixlingual.training.config import load_config

    for cell in {c.group: c for c in cells}.values():
        sets = {**plan.common_sets, **cell.override_dict(), plan.seed_key: cell.seed}
        try:
            load_config(plan.base_config, [f"{k}={format_override(v)}" for k, v in sets.items()])
        except ConfigError as err:
            raise ConfigError(f"cell {cell.group}: {err}") from err


def run_cells(plan: CellPlan, cells: list[Cell], runner: CommandRunner, *, jobs: int = 1) -> list[str]:
    """Run every cell (`jobs` at a time), printing one line per cell; return the failures.

    Cells are subprocesses, so threads are enough to run several at once; each cell's lock keeps
    two workers (threads here, or another sweep process on the same folder) off the same cell.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1, got {jobs}")
    failed: list[str] = []

    def one(numbered: tuple[int, Cell]) -> None:
        i, cell = numbered
        outcome = run_cell(plan, cell, runner)
        print(f"[{i}/{len(cells)}] {cell.slug}: {outcome.status} {outcome.seconds:.0f}s {outcome.message}",
              flush=True)
        if outcome.status == "failed":
            failed.append(f"{cell.slug}: {outcome.message}")

    # Seed-major order: an interrupted sweep has every recipe at its first seeds.
    order = sorted(enumerate(cells, 1), key=lambda item: (item[1].seed, item[0]))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, order))   # list(): re-raise a worker's exception here
    return failed


def run_sweep(args: argparse.Namespace, runner: CommandRunner = subprocess_runner) -> int:
    """Run (or dry-run) every cell not yet complete, then aggregate. Returns 1 if a cell failed."""
    plan, cells, options = build_plan(args)
    options["n_resamples"] = args.n_resamples
    if not args.no_validate:
        validate_cells(plan, cells)
    if args.dry_run:
        for cell in cells:
            state = "done" if is_complete(plan, cell) else "todo"
            print(f"[{state}] {cell.slug}")
            print("   ", " ".join(train_command(plan, cell, resume=False)))
            for spec in plan.evals_for(cell):
                print("   ", " ".join(eval_command(plan, cell, spec)))
        print(f"{len(cells)} cells, {sum(is_complete(plan, c) for c in cells)} already complete")
        return 0
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(plan.out_dir / "sweep.json", json.dumps(
        {"base_config": str(plan.base_config), "common_sets": plan.common_sets,
         "evals": [e.__dict__ for e in plan.evals], "cells": [c.slug for c in cells]}, indent=2, default=str))
    failed: list[str] = []
    if not args.aggregate_only:
        failed = run_cells(plan, cells, runner, jobs=args.jobs)
    write_outputs(plan, cells, options, failed)
    if args.convergence:
        from mixlingual.experiments.convergence.report import write_convergence_report

        finished = [plan.cell_dir(c) for c in cells if is_complete(plan, c)]
        write_convergence_report(finished, plan.out_dir / "convergence", language_groups=args.language_groups,
                                 low_resource=[x for x in args.low_resource.split(",") if x])
    print(f"summary: {plan.out_dir / 'summary.json'}  report: {plan.out_dir / 'report.md'}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    return run_sweep(args)
