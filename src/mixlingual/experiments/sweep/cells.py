"""Run one sweep cell - `mixlingual train` then `mixlingual evaluate` per benchmark - resumably.

Each step runs as its own subprocess (`sys.executable -m mixlingual ...`), so a crash in one cell
cannot poison the next, and every step leaves its outputs on disk. A cell folder looks like::

    cells/<slug>/cell.json          what the cell is (recipe, overrides, seed, commands)
    cells/<slug>/train.log          stdout + stderr of the training run
    cells/<slug>/train/             output.dir of the training run (final model in train/model/)
    cells/<slug>/train.done         marker: training finished
    cells/<slug>/eval/<label>/      metrics.json + per_query.jsonl of one benchmark
    cells/<slug>/eval/<label>.done  marker: that evaluation finished
    cells/<slug>/merged-<W>/        the final model merged with its base (eval entry merge_with_base: W)
    cells/<slug>/DONE               marker: the whole cell finished (written last)
    cells/<slug>/LOCK               held while a process works on the cell (host + pid inside)

Markers are written atomically (temp file + `os.replace`), so after an interruption a cell is
either complete (skipped next time), or resumes at the first step without a marker (training
restarts with `--resume` when it had started). The lock lets several sweep processes (or the
threads of `--jobs N`) share one sweep folder: a cell locked by a live process is left to it; a
lock whose process is gone (same host) is taken over.

One module on purpose: everything that makes a cell resumable (its commands, the markers, the
identity check, the lock) depends on the cell folder layout above, so it stays next to it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep.grid import Cell, format_override
from mixlingual.io import write_atomic

# argv, log file -> exit status. Tests pass a fake that writes the expected outputs.
CommandRunner = Callable[[list[str], Path], int]

DONE = "DONE"


def subprocess_runner(argv: list[str], log_path: Path) -> int:
    """Run argv with stdout and stderr appended to log_path; return its exit status."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


ROLES = ("select", "confirm")
ENTRY_KEYS = ("benchmark", "groups", "role", "options", "merge_with_base", "debias")
DEBIAS_KEYS = ("fit", "options", "method", "max_per_language", "languages")


@dataclass(frozen=True)
class EvalSpec:
    """One benchmark to evaluate cells on: `[label=]benchmark:path`, on every group or on `groups`.

    In a sweep file an entry is that string, or a mapping {benchmark: "[label=]bench:path",
    groups: [name, ...], role: select | confirm, options: {key: value}}: `groups` spends an
    expensive benchmark on a few recipes only; `role` makes it the split the best recipe is
    selected on, or the one it is confirmed on (default: reported only); `options` go to the
    benchmark's loader (`mixlingual evaluate --data-option`, e.g. {articles: 0-11} for xquad-r).
    `merge_with_base: W` evaluates (1 - W) * base + W * the cell's fine-tuned model instead (base:
    the cell config's starting model; merged once into cells/<slug>/merged-<W>/ by `mixlingual
    merge`); without an explicit label the entry is labelled `<benchmark>-merged-<W>`.
    `debias: {fit: NAME:PATH, options: {...}, method: center|project, max_per_language: N}` fits
    a language debiasing on the entry's model (the merged one with `merge_with_base`) before
    evaluating it with that fit.
    """

    label: str
    benchmark: str
    path: str | None
    groups: tuple[str, ...] | None = None    # None: every group
    role: str | None = None                  # None: reported only
    options: dict = field(default_factory=dict)
    args: tuple[str, ...] = ()               # extra `mixlingual evaluate` arguments of this benchmark
    merge_with_base: float | None = None     # evaluate the fine-tuned model merged with its base
    debias: dict | None = None               # fit per cell: {fit, options, method, max_per_language, languages}

    def applies_to(self, cell: Cell) -> bool:
        return self.groups is None or cell.group in self.groups

    def describe(self) -> str:
        """'benchmark:path, key value, ...': what data the label stands for, for reports."""
        text = f"{self.benchmark}:{self.path}" if self.path else self.benchmark
        debias = [f"debias {self.debias.get('method', 'center')} on {self.debias['fit']}"] if self.debias else []
        return ", ".join([text] + [f"{k} {v}" for k, v in self.options.items()] + list(self.args) + debias)

    @classmethod
    def from_entry(cls, entry) -> "EvalSpec":
        if isinstance(entry, str):
            return cls.parse(entry)
        if not isinstance(entry, dict) or set(entry) - set(ENTRY_KEYS) or "benchmark" not in entry:
            raise ConfigError(f"sweep eval entry {entry!r}: expected 'bench:path' or "
                              "{benchmark: 'bench:path', groups: [...], role: select|confirm, options: {...}}")
        name = entry["benchmark"]
        groups = entry.get("groups")
        if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
            raise ConfigError(f"sweep eval entry {name!r}: groups must be a list of group names")
        role = entry.get("role")
        if role is not None and role not in ROLES:
            raise ConfigError(f"sweep eval entry {name!r}: role must be one of {', '.join(ROLES)} "
                              f"(or left out: reported only), got {role!r}")
        options = entry.get("options") or {}
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise ConfigError(f"sweep eval entry {name!r}: options must be a mapping of loader options")
        spec = cls.parse(str(name))
        merge = _merge_weight(entry.get("merge_with_base"), name)
        label = spec.label
        if merge is not None and label == spec.benchmark:   # no explicit label
            label = f"{spec.benchmark}-merged-{merge:g}"
        return cls(label, spec.benchmark, spec.path, tuple(groups) if groups is not None else None,
                   role, dict(options), merge_with_base=merge, debias=_debias_entry(name, entry.get("debias")))

    def merged_dir(self, cell_dir: Path) -> Path:
        """Where this entry's merged model lives inside a cell folder."""
        return cell_dir / f"merged-{self.merge_with_base:g}"

    @classmethod
    def parse(cls, spec: str) -> "EvalSpec":
        label, eq, rest = spec.partition("=")
        if not eq or ":" in label:
            label, rest = "", spec
        benchmark, colon, path = rest.partition(":")
        if not colon or not benchmark or not path:
            raise ConfigError(f"--eval '{spec}' must look like 'benchmark:path' or 'label=benchmark:path'")
        return cls(label or benchmark, benchmark, path)


def _merge_weight(value, name) -> float | None:
    """An eval entry's `merge_with_base`: None, or the fine-tuned model's weight in [0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"sweep eval entry {name!r}: merge_with_base must be a number in [0, 1] "
                          f"(the fine-tuned model's weight), got {value!r}")
    return float(value)


def _debias_entry(name, debias) -> dict | None:
    """The checked `debias:` mapping of an eval entry (None when absent)."""
    if debias is None:
        return None
    if not isinstance(debias, dict) or set(debias) - set(DEBIAS_KEYS) or not isinstance(debias.get("fit"), str):
        raise ConfigError(f"sweep eval entry {name!r}: debias must be a mapping with fit: NAME:PATH and optionally "
                          f"{', '.join(k for k in DEBIAS_KEYS if k != 'fit')}, got {debias!r}")
    if debias.get("method", "center") not in ("center", "project"):
        raise ConfigError(f"sweep eval entry {name!r}: debias.method must be center or project, "
                          f"got {debias['method']!r}")
    if not isinstance(debias.get("options") or {}, dict):
        raise ConfigError(f"sweep eval entry {name!r}: debias.options must be a mapping of loader options")
    return dict(debias)


@dataclass
class CellPlan:
    """Everything shared by the cells of one sweep."""

    base_config: Path
    out_dir: Path
    evals: list[EvalSpec]
    common_sets: dict = field(default_factory=dict)   # --set applied to every cell
    cells_dir: Path | None = None                     # default OUT/cells; sweeps may share one
    seed_key: str = "train.seed"
    output_key: str = "output.dir"
    eval_args: list[str] = field(default_factory=list)   # extra args for every evaluate call
    python: str = sys.executable

    def cell_dir(self, cell: Cell) -> Path:
        return (self.cells_dir or self.out_dir / "cells") / cell.slug

    def evals_for(self, cell: Cell) -> list[EvalSpec]:
        return [spec for spec in self.evals if spec.applies_to(cell)]


def train_command(plan: CellPlan, cell: Cell, *, resume: bool) -> list[str]:
    sets = {**plan.common_sets, **cell.override_dict(), plan.seed_key: cell.seed,
            plan.output_key: str(plan.cell_dir(cell) / "train")}
    argv = [plan.python, "-m", "mixlingual", "train", str(plan.base_config)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={format_override(value)}"]
    return argv + (["--resume"] if resume else [])


def find_model_dir(output_dir: Path) -> Path:
    """The final model inside a training output folder (ST layout: has modules.json / config.json).

    `mixlingual train` writes it to `model/`; the folder itself is accepted too. Otherwise the
    expected `model/` path is returned, so that `mixlingual evaluate` reports it in its error.
    """
    for candidate in (output_dir / "model", output_dir):
        if (candidate / "modules.json").exists() or (candidate / "config.json").exists():
            return candidate
    return output_dir / "model"


def merge_command(plan: CellPlan, cell: Cell, spec: EvalSpec) -> list[str]:
    """`mixlingual merge` of the cell's fine-tuned model (model-unmerged/ when training merged
    already) with the model its config started from, into the entry's merged folder."""
    train_dir = plan.cell_dir(cell) / "train"
    tuned = train_dir / "model-unmerged"
    tuned = tuned if tuned.is_dir() else find_model_dir(train_dir)
    return [plan.python, "-m", "mixlingual", "merge", "--base-from-config", str(train_dir / "config.yaml"),
            str(tuned), "--weight", f"{spec.merge_with_base:g}", "--out", str(spec.merged_dir(plan.cell_dir(cell)))]


def debias_file(plan: CellPlan, cell: Cell, spec: EvalSpec) -> Path:
    return plan.cell_dir(cell) / "eval" / f"{spec.label}.debias.safetensors"


# evaluate arguments the debias fit takes too: it must encode the way the evaluation does
_RUNTIME_FLAGS = {"--bf16": 0, "--fp32": 0, "--threads": 1, "--batch-size": 1}


def debias_command(plan: CellPlan, cell: Cell, spec: EvalSpec) -> list[str]:
    """`mixlingual debias fit` on the cell's model for an eval entry with `debias:`; the fit
    corpus's embeddings are cached by model fingerprint in the sweep's debias cache."""
    fit = spec.debias or {}
    argv = [plan.python, "-m", "mixlingual", "debias", "fit", "--model", str(entry_model(plan, cell, spec)),
            "--data", fit["fit"], "--method", fit.get("method", "center"),
            "--eval", f"{spec.benchmark}:{spec.path}" if spec.path else spec.benchmark,
            "--cache-dir", str(plan.out_dir / "debias-cache"), "--out", str(debias_file(plan, cell, spec))]
    for key, value in (fit.get("options") or {}).items():
        argv += ["-o", f"{key}={format_override(value)}"]
    for key, value in spec.options.items():
        argv += ["--eval-option", f"{key}={format_override(value)}"]
    if fit.get("max_per_language"):
        argv += ["--max-per-language", str(fit["max_per_language"])]
    if fit.get("languages"):
        languages = fit["languages"]
        argv += ["--languages", languages if isinstance(languages, str) else ",".join(languages)]
    extra = [*spec.args, *plan.eval_args]
    for i, arg in enumerate(extra):
        flag, eq, _ = arg.partition("=")   # `--threads=1` as well as `--threads 1`
        if flag in _RUNTIME_FLAGS:
            argv += [arg] if eq else extra[i:i + 1 + _RUNTIME_FLAGS[flag]]
    return argv


def entry_model(plan: CellPlan, cell: Cell, spec: EvalSpec) -> Path:
    """The model an eval entry reads: the cell's merged folder with `merge_with_base`, else its final model."""
    cell_dir = plan.cell_dir(cell)
    return spec.merged_dir(cell_dir) if spec.merge_with_base is not None else find_model_dir(cell_dir / "train")


def eval_command(plan: CellPlan, cell: Cell, spec: EvalSpec) -> list[str]:
    cell_dir = plan.cell_dir(cell)
    data = ["--data", spec.path] if spec.path else []
    for key, value in spec.options.items():
        data += ["--data-option", f"{key}={format_override(value)}"]
    debias = ["--debias", str(debias_file(plan, cell, spec))] if spec.debias else []
    return [plan.python, "-m", "mixlingual", "evaluate", "--model", str(entry_model(plan, cell, spec)),
            "--benchmark", spec.benchmark, *data,
            "--out", str(cell_dir / "eval" / spec.label), *debias, *spec.args, *plan.eval_args]


@dataclass
class CellOutcome:
    cell: Cell
    status: str          # "done" | "skipped" (already complete) | "busy" (locked elsewhere) | "failed"
    seconds: float = 0.0
    message: str = ""


def is_complete(plan: CellPlan, cell: Cell) -> bool:
    """Trained and evaluated on every benchmark of this plan that applies to it (a benchmark
    added to a finished sweep later only runs that evaluation)."""
    cell_dir = plan.cell_dir(cell)
    return (cell_dir / "train.done").exists() and all(
        (cell_dir / "eval" / f"{spec.label}.done").exists() for spec in plan.evals_for(cell))


def cell_identity(plan: CellPlan, cell: Cell) -> dict:
    """What makes a cell's training run: compared on reuse, so two sweeps sharing a cells_dir
    never mistake each other's different cells of the same name for their own."""
    return {"recipe": cell.recipe, "group": cell.group, "seed": cell.seed,
            "overrides": cell.override_dict(), "common_sets": plan.common_sets,
            "base_config": str(plan.base_config)}


def check_identity(plan: CellPlan, cell: Cell) -> None:
    path = plan.cell_dir(cell) / "cell.json"
    if not path.exists():
        return
    want = json.loads(json.dumps(cell_identity(plan, cell), default=str))
    have = json.loads(path.read_text(encoding="utf-8"))
    have = {k: have.get(k) for k in want}
    if have != want:
        diff = sorted(k for k in want if have.get(k) != want[k])
        raise ConfigError(f"{path}: this folder holds a different cell (differs in {', '.join(diff)}); "
                          "use another --out / cells_dir or another recipe name")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        return True
    return True


def acquire_lock(cell_dir: Path) -> bool:
    """Take cell_dir/LOCK (O_EXCL); False when a live process on this host holds it.

    A lock left by a dead process of this host is taken over; a lock from another host is
    respected (we cannot tell whether it is alive) - delete it by hand if that host is gone.
    """
    cell_dir.mkdir(parents=True, exist_ok=True)
    lock = cell_dir / "LOCK"
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, _, pid = lock.read_text(encoding="utf-8").strip().rpartition(" ")
            except FileNotFoundError:
                continue            # released meanwhile: try again
            if host != socket.gethostname() or not pid.isdigit() or _pid_alive(int(pid)):
                return False
            lock.unlink(missing_ok=True)   # stale: its process is gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(me + "\n")
        return True
    return False


def release_lock(cell_dir: Path) -> None:
    (cell_dir / "LOCK").unlink(missing_ok=True)


def run_cell(plan: CellPlan, cell: Cell, runner: CommandRunner = subprocess_runner) -> CellOutcome:
    """Run the missing steps of one cell under its lock; never redo a step whose marker exists."""
    cell_dir = plan.cell_dir(cell)
    check_identity(plan, cell)
    if is_complete(plan, cell):
        return CellOutcome(cell, "skipped")
    if not acquire_lock(cell_dir):
        return CellOutcome(cell, "busy", message=f"locked by another process ({cell_dir / 'LOCK'})")
    try:
        if is_complete(plan, cell):   # finished by the lock's previous holder
            return CellOutcome(cell, "skipped")
        return _run_steps(plan, cell, runner)
    finally:
        release_lock(cell_dir)


def _run_steps(plan: CellPlan, cell: Cell, runner: CommandRunner) -> CellOutcome:
    cell_dir = plan.cell_dir(cell)
    start = time.time()
    write_atomic(cell_dir / "cell.json", json.dumps(cell_identity(plan, cell), indent=2, default=str))
    if not (cell_dir / "train.done").exists():
        started = cell_dir / "train.started"
        argv = train_command(plan, cell, resume=started.exists())
        write_atomic(started, " ".join(argv) + "\n")
        rc = runner(argv, cell_dir / "train.log")
        if rc != 0:
            return CellOutcome(cell, "failed", time.time() - start,
                               f"training exited with {rc}; see {cell_dir / 'train.log'}")
        write_atomic(cell_dir / "train.done", f"{time.time():.0f}\n")
    for spec in plan.evals_for(cell):
        marker = cell_dir / "eval" / f"{spec.label}.done"
        if marker.exists():
            continue
        if spec.merge_with_base is not None and not (spec.merged_dir(cell_dir) / "merge.json").exists():
            log = cell_dir / f"merge-{spec.merge_with_base:g}.log"
            rc = runner(merge_command(plan, cell, spec), log)
            if rc != 0:
                return CellOutcome(cell, "failed", time.time() - start, f"merge exited with {rc}; see {log}")
        if spec.debias:   # fitted on this cell's model, right before the evaluation that applies it
            log = cell_dir / f"debias-{spec.label}.log"
            debias_file(plan, cell, spec).parent.mkdir(parents=True, exist_ok=True)
            rc = runner(debias_command(plan, cell, spec), log)
            if rc != 0:
                return CellOutcome(cell, "failed", time.time() - start, f"debias fit for {spec.label} exited "
                                   f"with {rc}; see {log}")
        rc = runner(eval_command(plan, cell, spec), cell_dir / f"eval-{spec.label}.log")
        metrics = cell_dir / "eval" / spec.label / "metrics.json"
        if rc != 0 or not metrics.exists():
            return CellOutcome(cell, "failed", time.time() - start,
                               f"evaluate {spec.label} exited with {rc}; see {cell_dir / f'eval-{spec.label}.log'}")
        write_atomic(marker, f"{time.time():.0f}\n")
    write_atomic(cell_dir / DONE, json.dumps({"finished": time.time(), "seconds": time.time() - start}) + "\n")
    return CellOutcome(cell, "done", time.time() - start)
