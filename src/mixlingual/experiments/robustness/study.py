"""A robustness study over a sweep's trained models, from a study file (`mixlingual robustness --study FILE`).

    mixlingual robustness --study configs/studies/findings-robustness.yaml [--dry-run] [--jobs N]

The file (a top-level `robustness_study:` mapping; configs/studies/findings-robustness.yaml is
README question 3) names recipes, seeds and the sweep's cells folder. For each recipe and seed
whose trained model exists (CELLS/<recipe>__seed=<k>/train/model; others are skipped with a
note), on the study's data:

    mixlingual robustness  -> OUT/<recipe>__seed=<k>/{clean,<perturbation>-<rate>,cache}/
    mixlingual attack      -> OUT/<recipe>__seed=<k>/attack/attack.json

`jobs` models at a time, each its own subprocess (with the study's runtime arguments, e.g.
`--bf16 --threads 1`: one torch thread each), logged to OUT/<recipe>__seed=<k>/run.log; then

    mixlingual robustness --summarize -> OUT/summary/{summary.json,report.md,robustness.png}

with the baselines that have a model. Rerunning skips finished work: a model whose evaluation
folders (clean and every perturbation) all hold a metrics.json (and robustness.json was written),
and an attack whose attack.json exists. A failed model stops the study before the summary (exit
1). `--dry-run` prints the commands (`+ mixlingual ...`) and what a run would skip, and writes
nothing. Relative paths in the file are read from the current folder (run it from the
repository root, like the sweep files).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from mixlingual.errors import ConfigError
from mixlingual.experiments.robustness.perturb import evaluation_folder_name, parse_perturb_spec

KEY = "robustness_study"
REQUIRED = ("recipes", "seeds", "cells", "out", "benchmark", "data", "perturbations")
OPTIONAL = {"baselines": [], "data_options": {}, "attack": {}, "runtime_args": [], "jobs": 1,
            "n_resamples": 10_000}
ATTACK_KEYS = ("budget", "max_queries", "seed", "tries_per_step", "pool")

# mixlingual arguments, log file -> exit status (tests pass a fake that records the calls)
Runner = Callable[[list[str], Path], int]


def subprocess_runner(args: list[str], log_path: Path) -> int:
    """`python -m mixlingual ARGS` in its own process, stdout and stderr appended to log_path."""
    with open(log_path, "a", encoding="utf-8") as log:
        return subprocess.run([sys.executable, "-m", "mixlingual", *args], stdout=log, stderr=subprocess.STDOUT,
                              check=False).returncode


@dataclass
class Study:
    """A study file's settings (see configs/studies/findings-robustness.yaml)."""

    recipes: list[str]
    seeds: list[int]
    cells: Path
    out: Path
    benchmark: str
    data: str
    perturbations: list[str]
    baselines: list[str] = field(default_factory=list)
    data_options: dict = field(default_factory=dict)
    attack: dict = field(default_factory=dict)
    runtime_args: list[str] = field(default_factory=list)
    jobs: int = 1
    n_resamples: int = 10_000

    @classmethod
    def load(cls, path: Path) -> Study:
        if not Path(path).is_file():
            raise ConfigError(f"--study {path}: no such file")
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or not isinstance(data.get(KEY), dict):
            raise ConfigError(f"{path}: expected a top-level '{KEY}:' mapping")
        entry = data[KEY]
        unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
        missing = [k for k in REQUIRED if k not in entry]
        if unknown or missing:
            raise ConfigError(f"{path}: " + "; ".join(
                ([f"unknown key(s) {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else []))
                + f" (keys: {', '.join(REQUIRED + tuple(OPTIONAL))})")
        values = {**OPTIONAL, **entry}
        words = lambda v: v.split() if isinstance(v, str) else [str(x) for x in v]   # noqa: E731
        study = cls(recipes=words(values["recipes"]), seeds=[int(s) for s in words(values["seeds"])],
                    cells=Path(values["cells"]), out=Path(values["out"]), benchmark=str(values["benchmark"]),
                    data=str(values["data"]), perturbations=words(values["perturbations"]),
                    baselines=words(values["baselines"]), data_options=dict(values["data_options"] or {}),
                    attack=dict(values["attack"] or {}), runtime_args=words(values["runtime_args"]),
                    jobs=int(values["jobs"]), n_resamples=int(values["n_resamples"]))
        study.check(path)
        return study

    def check(self, path) -> None:
        for spec in self.perturbations:   # a typo fails before any model is loaded
            parse_perturb_spec(spec)
        bad = sorted(set(self.attack) - set(ATTACK_KEYS))
        if bad:
            raise ConfigError(f"{path}: attack: unknown key(s) {bad}; known: {', '.join(ATTACK_KEYS)}")
        if self.jobs < 1 or self.n_resamples < 1:
            raise ConfigError(f"{path}: jobs and n_resamples must be at least 1")

    def data_args(self) -> list[str]:
        args = ["--benchmark", self.benchmark, "--data", self.data]
        for key, value in self.data_options.items():
            args += ["--data-option", f"{key}={value}"]
        return args

    def robustness_command(self, cell: str) -> list[str]:
        perturb = [arg for spec in self.perturbations for arg in ("--perturb", spec)]
        return ["robustness", "--model", str(self.model(cell)), *self.data_args(), *perturb,
                *self.runtime_args, "--out", str(self.out / cell)]

    def attack_command(self, cell: str) -> list[str]:
        options = [arg for key, value in self.attack.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
        return ["attack", "--model", str(self.model(cell)), *self.data_args(), *options, *self.runtime_args,
                "--out", str(self.out / cell / "attack")]

    def model(self, cell: str) -> Path:
        return self.cells / cell / "train" / "model"

    def robustness_done(self, cell: str) -> bool:
        folders = [evaluation_folder_name(None)] + [evaluation_folder_name(*parse_perturb_spec(spec))
                                                    for spec in self.perturbations]
        out = self.out / cell
        return (out / "robustness.json").is_file() and all((out / f / "metrics.json").is_file() for f in folders)

    def attack_done(self, cell: str) -> bool:
        return (self.out / cell / "attack" / "attack.json").is_file()


def find_cells(study: Study) -> list[str]:
    """'<recipe>__seed=<k>' of every recipe and seed whose model exists, in the file's order."""
    cells = []
    for recipe in study.recipes:
        for seed in study.seeds:
            cell = f"{recipe}__seed={seed}"
            if study.model(cell).is_dir():
                cells.append(cell)
            else:
                print(f"skip {cell}: no model at {study.model(cell)}", file=sys.stderr)
    if not cells:
        raise ConfigError(f"no trained model found under {study.cells} for recipes: {' '.join(study.recipes)}")
    return cells


def summary_command(study: Study, cells: list[str]) -> list[str]:
    recipes = [cell.rpartition("__seed=")[0] for cell in cells]
    labels = [f"{recipe}={study.out / cell}" for recipe, cell in zip(recipes, cells)]
    baselines = [b for b in study.baselines if b in recipes]
    return ["robustness", "--summarize", *labels, *(["--baseline", *baselines] if baselines else []),
            "--n-resamples", str(study.n_resamples), "--out", str(study.out / "summary")]


def _show(args: list[str]) -> str:
    return "+ mixlingual " + shlex.join(args)


def _say(line: str, stream=None) -> None:
    """One line in one write, so lines of models run at once do not interleave."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


def run_model(study: Study, cell: str, runner: Runner, *, dry_run: bool) -> bool:
    """Robustness, then the attack, of one model (each skipped when finished); False when one failed."""
    log = study.out / cell / "run.log"
    steps = [("robustness", study.robustness_command(cell), study.robustness_done(cell)),
             ("attack", study.attack_command(cell), study.attack_done(cell))]
    for name, args, done in steps:
        if done:
            _say(f"= {study.out / cell}: {name} finished, skipped")
            continue
        _say(_show(args))
        if dry_run:
            continue
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(_show(args) + "\n")
        if runner(args, log) != 0:
            _say(f"{cell}: {name} failed (see {log})", sys.stderr)
            return False
    return True


def run_study(path: Path, *, dry_run: bool = False, jobs: int | None = None, runner: Runner = subprocess_runner) -> int:
    """Every model's robustness and attack (`jobs` at a time), then the summary; 1 if a model failed."""
    study = Study.load(path)
    cells = find_cells(study)
    with ThreadPoolExecutor(max_workers=jobs or study.jobs) as pool:
        ok = list(pool.map(lambda cell: run_model(study, cell, runner, dry_run=dry_run), cells))
    if not all(ok):
        print(f"a model's robustness run or attack failed (see {study.out}/*/run.log); no summary written",
              file=sys.stderr)
        return 1
    args = summary_command(study, cells)
    print(_show(args), flush=True)
    if dry_run:
        return 0
    log = study.out / "summary" / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(_show(args) + "\n", encoding="utf-8")
    if runner(args, log) != 0:
        print(f"the summary failed (see {study.out / 'summary' / 'run.log'})", file=sys.stderr)
        return 1
    print(f"wrote {study.out / 'summary'}/{{summary.json,report.md,robustness.png}}")
    return 0


def run(args: argparse.Namespace) -> int:
    """`mixlingual robustness --study FILE`: refuses the options of the other modes."""
    others = [flag for flag, value in (("--model", args.model), ("--clean", args.clean), ("--perturbed", args.perturbed),
                                       ("--perturb", args.perturb), ("--summarize", args.summarize),
                                       ("--out", args.out), ("--baseline", args.baseline)) if value]
    if others:
        raise ConfigError(f"--study takes its settings from the file; drop {', '.join(others)}")
    return run_study(args.study, dry_run=args.dry_run, jobs=args.jobs)
