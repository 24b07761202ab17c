"""Sweep runner: grid expansion, resume after interruption, aggregation, report - with a fake runner."""

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep import plan as sweep
from mixlingual.experiments.sweep.grid import expand_cells, parse_grid_spec, split_top_level


def test_grid_spec_parsing():
    assert parse_grid_spec("sampling.alpha=0,0.25,1") == ("sampling.alpha", [0, 0.25, 1])
    ratios = [[0.5, 0.25, 0.25], [0.4, 0.4, 0.2]]
    assert parse_grid_spec("sampling.ratios=[0.5,0.25,0.25],[0.4,0.4,0.2]") == ("sampling.ratios", ratios)
    assert parse_grid_spec("sampling.ratios=[0.5,0.25,0.25];[0.4,0.4,0.2]") == ("sampling.ratios", ratios)
    assert parse_grid_spec("s.strategy=x-x;x-y,hybrid")[1] == ["x-x", "x-y,hybrid"]
    assert parse_grid_spec("s.sched={a: 1, b: 2};{a: 3}")[1] == [{"a": 1, "b": 2}, {"a": 3}]
    assert split_top_level("'a,b',c", ",") == ["'a,b'", "c"]


@pytest.mark.parametrize("spec, message", [("alpha", "must look like"), ("a=[1,2", "unbalanced"),
                                           ("a=1,,2", "empty value"), ("a=1,1", "repeated")])
def test_bad_grid_specs_name_the_problem(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid_spec(spec)


def test_expansion_is_a_product_with_recipes_and_seeds():
    grid = [parse_grid_spec("a.x=1,2"), parse_grid_spec("b.y=[0.5,0.5],[0.2,0.8]")]
    cells = expand_cells(grid, recipes={"r1": {"c.z": "u"}, "r2": {}}, seeds=[0, 1, 2])
    assert len(cells) == 2 * 2 * 2 * 3
    first = cells[0]
    assert first.override_dict() == {"c.z": "u", "a.x": 1, "b.y": [0.5, 0.5]} and first.seed == 0
    assert first.slug == "r1__a.x=1__b.y=0.5-0.5__seed=0"
    assert len({c.slug for c in cells}) == len(cells)
    assert len({c.group for c in cells}) == 8
    with pytest.raises(ConfigError, match="sets grid key"):
        expand_cells(grid, recipes={"bad": {"a.x": 3}}, seeds=[0])


def write_eval_outputs(out: Path, metrics: dict, *, mono: list[float], multi: list[float],
                       rank_distance: list[float]) -> None:
    """metrics.json and per_query.jsonl of 60 English queries, written by the writer `mixlingual
    evaluate` uses (EvalOutputs), so a change of the per-query format reaches these tests.

    Only AP and rank distance carry the given values; the other per-query metrics are fixed."""
    import numpy as np

    from mixlingual.data.records import Query
    from mixlingual.evaluation.outputs import EvalOutputs
    from mixlingual.evaluation.evaluate import LanguageScores
    from mixlingual.evaluation.metrics import METRIC_NAMES

    n = len(mono)
    queries = [Query(f"en:q{i}", "en", f"question {i}", f"q{i}") for i in range(n)]

    def values(ap: list[float]) -> dict:
        fixed = {m: np.full(n, 0.5) for m in METRIC_NAMES}
        return {**fixed, "map": np.asarray(ap), "n_relevant": np.ones(n, int), "first_rank": np.ones(n)}

    outputs = EvalOutputs(out, ("mono", "multi"))
    no_relevant = SimpleNamespace(indices=np.zeros(0, int), indptr=np.zeros(n + 1, int))
    scores = LanguageScores("en", queries, SimpleNamespace(topk_ids=None), no_relevant, {("en", "en"): values(mono)},
                            {**values(multi), "rank_distance": np.asarray(rank_distance, float)})
    pool = SimpleNamespace(langs=["en"], ids=[], block_of=np.zeros(0, int))
    outputs.add_language(scores, pool, {"mono": 0, "cross": 0, "multi": 0})
    outputs.finish(metrics)


class FakeRunner:
    """Plays `mixlingual train` / `evaluate`: writes a model folder and metrics that depend on alpha."""

    def __init__(self, fail_on: str | None = None, flip_on: str | None = None):
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.flip_on = flip_on      # evaluations whose command holds this text rank alpha the other way

    def __call__(self, argv, log_path):
        self.calls.append(argv)
        command = argv[3]
        if command == "train":
            sets = dict(a.split("=", 1) for a in argv[argv.index("train") + 2:] if "=" in a)
            if self.fail_on and self.fail_on in " ".join(argv):
                return 1
            model = Path(sets["output.dir"]) / "model"
            model.mkdir(parents=True, exist_ok=True)
            (model / "modules.json").write_text("[]")
            (model / "fake.json").write_text(json.dumps({"alpha": float(sets["sampling.alpha"]),
                                                         "seed": int(sets["train.seed"])}))
            return 0
        model = Path(argv[argv.index("--model") + 1])
        info = json.loads((model / "fake.json").read_text())
        alpha, seed = info["alpha"], info["seed"]
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        mono, multi = 0.5 + 0.2 * alpha + 0.01 * seed, 0.6 - 0.2 * alpha + 0.01 * seed
        if self.flip_on and self.flip_on in " ".join(argv):
            multi = 0.4 + 0.2 * alpha + 0.01 * seed
        metrics = {"settings": {"mono": {"map": mono}, "cross": {"map": 0.4}, "multi": {"map": multi}},
                   "rank_distance": {"mean": 10 * alpha}, "pairs": {"map": {"en": {"de": 0.3}}}}
        write_eval_outputs(out, metrics, mono=[mono + 0.01 * (i % 5) - 0.02 for i in range(60)],
                           multi=[multi + 0.01 * (i % 5) - 0.02 for i in range(60)],
                           rank_distance=[10 * alpha + i % 3 for i in range(60)])
        return 0


def _args(tmp_path, **extra):
    config = tmp_path / "base.yaml"
    config.write_text("train: {seed: 0}\n")
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    argv = [str(config), "--grid", "sampling.alpha=0,0.5,1", "--seeds", "2", "--out", str(tmp_path / "sw"),
            "--eval", "dev=xquad-r:/data/x", "--set", "train.max_steps=5", "--n-resamples", "2000"]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", value]
    return parser.parse_args(argv)


def test_sweep_runs_resumes_and_aggregates(tmp_path):
    runner = FakeRunner(fail_on="sampling.alpha=1 --set train.seed=1")  # the cell alpha=1, seed 1 crashes
    assert sweep.run_sweep(_args(tmp_path), runner) == 1  # one cell failed
    trains = [c for c in runner.calls if c[3] == "train"]
    assert len(trains) == 6 and "train.max_steps=5" in trains[0]
    assert not any("--resume" in c for c in trains)
    # rerun after the "interruption": only the failed cell is redone, with --resume
    runner2 = FakeRunner()
    assert sweep.run_sweep(_args(tmp_path), runner2) == 0
    assert [c[3] for c in runner2.calls] == ["train", "evaluate"]
    assert "--resume" in runner2.calls[0] and "train.seed=1" in runner2.calls[0]
    # a third run does nothing at all
    runner3 = FakeRunner()
    sweep.run_sweep(_args(tmp_path), runner3)
    assert runner3.calls == []

    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    stats = summary["metrics"]["sampling.alpha=0.5"]["dev"]["settings.mono.map"]
    assert stats["mean"] == pytest.approx(0.605) and stats["std"] == pytest.approx(0.00707, abs=1e-4)
    assert stats["n"] == 2
    assert "pairs.map.en.de" not in summary["metrics"]["sampling.alpha=0.5"]["dev"]
    comps = {(c["group"], c["setting"]): c for c in summary["comparisons"]}
    assert comps[("sampling.alpha=1", "mono")]["p_value"] < 0.01
    assert comps[("sampling.alpha=1", "mono")]["mean_diff"] == pytest.approx(0.2)
    report = (tmp_path / "sw" / "report.md").read_text()
    assert "0.605 ± 0.007" in report and "(baseline)" in report
    assert "| group | mono R@1 | mono R@10 | mono MRR@10 | cross R@1 |" in report
    assert (tmp_path / "sw" / "plots" / "dev-vs-ratio.png").stat().st_size > 1000
    assert summary["pareto"]["dev"] == ["sampling.alpha=0", "sampling.alpha=0.5", "sampling.alpha=1"]


def test_sweep_file_and_dry_run(tmp_path, capsys):
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"sweep:\n  base_config: {base}\n  seeds: [3]\n  recipes:\n    xx: {{sampling.alpha: 1.0}}\n"
                    f"    hybrid: {{sampling.alpha: 0.5}}\n  eval: ['mlqa-r:/d']\n")
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    args = parser.parse_args([str(spec), "--out", str(tmp_path / "o"), "--dry-run"])
    assert sweep.run_sweep(args, FakeRunner()) == 0
    out = capsys.readouterr().out
    assert "[todo] xx__seed=3" in out and "sampling.alpha=0.5" in out and "2 cells, 0 already complete" in out
    spec.write_text(f"sweep:\n  base_config: {base}\n  recipes:\n    bad: {{sampling.alpah: 1}}\n  eval: ['mlqa-r:/d']\n")
    with pytest.raises(ConfigError, match="cell bad: unknown config key 'sampling.alpah'; did you mean"):
        sweep.run_sweep(args, FakeRunner())
    spec.write_text("sweep:\n  bogus: 1\n  base_config: x\n")
    with pytest.raises(ConfigError, match="unknown sweep key"):
        sweep.build_plan(args)


def test_x_value_reads_list_items_and_mapping_entries():
    from mixlingual.experiments.sweep.plots import pareto_front, x_value

    over = {"sampling.alpha": 0.25, "r": [0.5, 0.3], "sampling.ratios": {"X-X": 0.4, "X-Y": 0.6}}
    assert x_value(over, "sampling.alpha") == 0.25 and x_value(over, "r[1]") == 0.3
    assert x_value(over, "sampling.ratios[X-X]") == 0.4 and x_value(over, "r[7]") is None
    assert x_value({"k": "x-x"}, "k") is None
    assert pareto_front({"a": (1, 1), "b": (2, 0), "c": (0.5, 0.5), "d": (1, 0.9)}) == ["a", "b"]


def test_three_way_ratio_mappings_expand_and_render_for_set():
    from mixlingual.experiments.sweep.grid import format_override

    key, values = parse_grid_spec("sampling.ratios={X-X: 0.5, X-Y: 0.25, mixed: 0.25};{X-X: 0.4, X-Y: 0.4, mixed: 0.2}")
    assert values[1] == {"X-X": 0.4, "X-Y": 0.4, "mixed": 0.2}
    cells = expand_cells([(key, values)], seeds=[0])
    assert cells[0].slug == "sampling.ratios=X-X0.5-X-Y0.25-mixed0.25__seed=0"
    import yaml
    assert yaml.safe_load(format_override(values[0])) == values[0]


def test_jobs_run_every_cell_once_and_live_locks_are_respected(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from mixlingual.experiments.sweep.cells import acquire_lock

    args = _args(tmp_path, jobs="3")
    plan, cells, _ = sweep.build_plan(args)
    # one cell is held by a live process on this host, one by a process that has exited (stale)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        host = socket.gethostname()
        for cell, pid in ((cells[0], live.pid), (cells[1], dead.pid)):
            plan.cell_dir(cell).mkdir(parents=True)
            (plan.cell_dir(cell) / "LOCK").write_text(f"{host} {pid}\n")
        runner = FakeRunner()
        assert sweep.run_sweep(args, runner) == 0
        trained = sorted(c[c.index("train") + 2:][-1] for c in runner.calls if c[3] == "train")
        assert len(trained) == 5 and len(set(trained)) == 5           # every other cell exactly once
        assert not (plan.cell_dir(cells[0]) / "DONE").exists()       # left to its live holder
        assert (plan.cell_dir(cells[1]) / "DONE").exists()           # stale lock taken over
        assert not any((plan.cell_dir(c) / "LOCK").exists() for c in cells[1:])
        assert not acquire_lock(plan.cell_dir(cells[0]))
    finally:
        live.kill()
        live.wait()
    assert acquire_lock(plan.cell_dir(cells[0])) and os.path.exists(plan.cell_dir(cells[0]) / "LOCK")


def test_eval_restricted_to_groups_added_later_and_shared_cells_dir(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    shared = tmp_path / "pool"

    def write(evals: str, recipes: str = "x-x: {sampling.alpha: 1.0}\n    hybrid: {sampling.alpha: 0.5}"):
        spec.write_text(f"sweep:\n  base_config: {base}\n  cells_dir: {shared}\n  seeds: 2\n"
                        f"  recipes:\n    {recipes}\n  eval:\n{evals}")

    def run(out: str) -> FakeRunner:
        parser = argparse.ArgumentParser()
        sweep.add_arguments(parser)
        runner = FakeRunner()
        assert sweep.run_sweep(parser.parse_args([str(spec), "--out", str(tmp_path / out)]), runner) == 0
        return runner

    write("    - dev=xquad-r:/d\n")
    first = run("a")
    assert sum(c[3] == "train" for c in first.calls) == 4 and (shared / "x-x__seed=0" / "DONE").exists()
    # a costly benchmark added later, for one group only: only those evaluations run
    write("    - dev=xquad-r:/d\n    - benchmark: heavy=mlqa-r:/m\n      groups: [hybrid]\n")
    second = run("a")
    assert [c[3] for c in second.calls] == ["evaluate", "evaluate"]
    assert all("hybrid__seed" in " ".join(c) and "mlqa-r" in c for c in second.calls)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert "settings.mono.map" in summary["metrics"]["hybrid"]["heavy"]
    assert summary["metrics"]["x-x"]["heavy"] == {}
    # another sweep folder reuses the shared cells it has in common and trains only the new recipe
    write("    - dev=xquad-r:/d\n", "x-x: {sampling.alpha: 1.0}\n    x-y: {sampling.alpha: 0.0}")
    third = run("b")
    assert [c[3] for c in third.calls] == ["train", "evaluate"] * 2
    assert all("x-y__seed" in " ".join(c) for c in third.calls)
    # ... but never a cell of the same name that was trained differently
    write("    - dev=xquad-r:/d\n", "x-x: {sampling.alpha: 0.9}")
    with pytest.raises(ConfigError, match="holds a different cell .*overrides"):
        run("c")
    write("    - benchmark: dev=xquad-r:/d\n      groups: [nope]\n")
    with pytest.raises(ConfigError, match=r"groups \['nope'\] are not in this sweep"):
        run("d")


def test_several_baselines_and_rank_distance_tests(tmp_path):
    args = _args(tmp_path, baseline="sampling.alpha=0,sampling.alpha=1")
    assert sweep.run_sweep(args, FakeRunner()) == 0
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert summary["baselines"] == ["sampling.alpha=0", "sampling.alpha=1"]
    rows = {(c["group"], c["baseline"], c["setting"], c["metric"]): c for c in summary["comparisons"]}
    # alpha 0.5 against both baselines, AP in two settings + rank distance in multi
    mid = [k for k in rows if k[0] == "sampling.alpha=0.5"]
    assert sorted(mid) == sorted([("sampling.alpha=0.5", b, s, m) for b in ("sampling.alpha=0", "sampling.alpha=1")
                                  for s, m in (("mono", "map"), ("multi", "map"), ("multi", "rank_distance"))])
    rd = rows[("sampling.alpha=1", "sampling.alpha=0", "multi", "rank_distance")]
    assert rd["mean_diff"] == pytest.approx(10.0) and rd["p_value"] < 0.01
    assert "rank_distance" not in {c["metric"] for c in summary["comparisons"] if c["setting"] == "mono"}
    report = (tmp_path / "sw" / "report.md").read_text()
    assert "| sampling.alpha=1 | sampling.alpha=0 | multi | rank_distance | +10 [+10, +10] |" in report
    assert "| p | p_holm | questions | queries | dropped | seeds |" in report and "p mono (p_holm)" in report
    assert rd["dropped_queries"] == 0 and rd["seeds_paired"] and "p_seeds" not in rd and "p_per_query" not in rd
    with pytest.raises(ConfigError, match="baseline \\['nope'\\] is not a group of this sweep"):
        sweep.run_sweep(_args(tmp_path, baseline="nope"), FakeRunner())


def test_ratio_plot_lines_per_recipe_or_one_curve_of_recipes():
    from mixlingual.experiments.sweep.aggregate import Group
    from mixlingual.experiments.sweep.plots import ratio_lines

    own = [Group(n, n, {"sampling.alpha": a}) for n, a in (("x-y", 0.0), ("hybrid", 0.5), ("x-x", 1.0))]
    assert ratio_lines(own, "sampling.alpha") == {"sampling.alpha": [(0.0, "x-y"), (0.5, "hybrid"), (1.0, "x-x")]}
    grid = [Group(f"{r}__a={a}", r, {"sampling.alpha": a}) for r in ("r1", "r2") for a in (0.0, 1.0)]
    assert sorted(ratio_lines(grid, "sampling.alpha")) == ["r1", "r2"]
    assert ratio_lines(own, "sampling.temperature") == {}


ROOT = Path(__file__).resolve().parents[1]


def _parse(argv):
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_without_eval_a_sweep_evaluates_on_the_configs_own_eval_data(tmp_path):
    runner = FakeRunner()
    args = _parse([ROOT / "configs" / "demo.yaml", "--grid", "sampling.alpha=0,1", "--seeds", "1",
                   "--out", tmp_path / "sw"])
    assert sweep.run_sweep(args, runner) == 0
    evals = [c for c in runner.calls if c[3] == "evaluate"]
    assert len(evals) == 2 and all(c[c.index("--benchmark") + 1] == "demo" and "--data" not in c for c in evals)
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert summary["metrics"]["sampling.alpha=1"]["demo"]["settings.multi.map"]["mean"] == pytest.approx(0.4)
    assert "| sampling.alpha=1 | 1 | 0.700 ± 0.000 |" in (tmp_path / "sw" / "report.md").read_text()
    # the config's loader options and eval.langs go along
    base = tmp_path / "base.yaml"
    base.write_text("eval: {data: {name: xquad-r, path: /x, options: {paragraphs: 40}}, langs: [de, en]}\n")
    plan, _, _ = sweep.build_plan(_parse([base, "--out", tmp_path / "o"]))
    (spec,) = plan.evals
    assert (spec.label, spec.benchmark, spec.path, spec.options) == ("xquad-r", "xquad-r", "/x", {"paragraphs": 40})
    command = sweep.eval_command(plan, sweep.expand_cells([], seeds=[0])[0], spec)
    assert "--data-option paragraphs=40 " in " ".join(command) and "--langs de,en" in " ".join(command)


def test_without_eval_and_without_eval_data_the_sweep_refuses_before_training(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    runner = FakeRunner()
    with pytest.raises(ConfigError, match=r"nothing to evaluate the cells on: add --eval 'benchmark:path'.*eval\.data"):
        sweep.run_sweep(_parse([base, "--grid", "sampling.alpha=0,1", "--out", tmp_path / "sw"]), runner)
    assert runner.calls == [] and not (tmp_path / "sw").exists()


def _role_sweep(tmp_path, evals: str, extra: str = "") -> Path:
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"sweep:\n  base_config: {base}\n  seeds: 2\n  baseline: x-x\n{extra}  recipes:\n"
                    "    x-x: {sampling.alpha: 1.0}\n    hybrid: {sampling.alpha: 0.5}\n    x-y: {sampling.alpha: 0.0}\n"
                    f"  eval:\n{evals}")
    return spec


SELECT_CONFIRM = ("    - dev=xquad-r:/d\n"
                  "    - benchmark: sel=xquad-r:/d\n      options: {articles: 0-1}\n      role: select\n"
                  "    - benchmark: conf=xquad-r:/d/\n      options: {articles: '2-3'}\n      role: confirm\n")


def test_best_recipe_is_selected_on_one_split_and_confirmed_on_another(tmp_path):
    spec = _role_sweep(tmp_path, SELECT_CONFIRM)
    runner = FakeRunner(flip_on="articles=2-3")     # the confirm split ranks multi mAP the other way
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), runner) == 0
    assert any("--data-option articles=0-1" in " ".join(c) for c in runner.calls)
    selection = json.loads((tmp_path / "sw" / "summary.json").read_text())["selection"]
    # chosen by the select split alone (multi mAP, the base config's eval.metric), best = X-Y
    assert (selection["best"], selection["selected_on"], selection["confirmed_on"]) == ("x-y", ["sel"], ["conf"])
    assert selection["metric"] == "settings.multi.map" and selection["mode"] == "max"
    assert selection["select_scores"]["x-y"] == pytest.approx(0.605)
    assert selection["confirm"]["conf"] == {"evaluated": True, "value": pytest.approx(0.405), "rank": 3,
                                            "n_groups": 3, "best_on_this_split": "x-x"}
    report = (tmp_path / "sw" / "report.md").read_text()
    assert ("**x-y**: selected on `sel` (xquad-r:/d, articles 0-1), confirmed on `conf` "
            "(xquad-r:/d/, articles 2-3); by settings.multi.map") in report
    assert "| conf | confirm | 0.405 ± 0.007 | 0.505 ± 0.007 |" in report      # then mono mAP
    assert "| sel | select | 0.605 ± 0.007 |" in report and "| chosen: best of 3 |" in report and "| 3 of 3 (best here: x-x) |" in report
    assert "| conf | x-y | x-x | multi | map | -0.2" in report          # its tests on the confirm split only
    assert "| sel | x-y |" not in report and "## sel (select split)" in report and "## dev\n" in report
    # another selection metric, from the sweep file: lower rank distance is better by default
    _role_sweep(tmp_path, SELECT_CONFIRM, "  select_metric: rank_distance.mean\n")
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw", "--aggregate-only"]), FakeRunner()) == 0
    selection = json.loads((tmp_path / "sw" / "summary.json").read_text())["selection"]
    assert (selection["best"], selection["mode"]) == ("x-y", "min")
    _role_sweep(tmp_path, SELECT_CONFIRM, "  select_metric: settings.mono.map\n")
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw", "--aggregate-only"]), FakeRunner()) == 0
    assert json.loads((tmp_path / "sw" / "summary.json").read_text())["selection"]["best"] == "x-x"


@pytest.mark.parametrize("evals, message", [
    ("    - benchmark: a=xquad-r:/d\n      role: select\n    - benchmark: b=xquad-r:/d\n"
     "      options: {articles: 0-11}\n      role: confirm\n",
     r"eval: a \(role select\) and b \(role confirm\) use xquad-r data with both roles \(one keeps every"),
    ("    - benchmark: a=xquad-r:/d\n      options: {articles: 0-11}\n      role: select\n"
     "    - benchmark: b=xquad-r:/d/en.json\n      options: {articles: 10-20}\n      role: confirm\n",
     r"both keep articles \[10, 11\]"),
    ("    - benchmark: a=xquad-r:/d\n      role: confirm\n", "eval a: role confirm needs an eval entry with role select"),
    ("    - benchmark: a=xquad-r:/d\n      role: report\n", "role must be one of select, confirm"),
    ("    - benchmark: a=xquad-r:/d\n      options: {artcles: 0-3}\n",
     "eval a: options: --data-option artcles: the xquad-r loader has no option 'artcles'"),
    ("    - benchmark: a=xquad-r:/d\n      options: {articles: 9-3}\n      role: select\n"
     "    - benchmark: b=mlqa-r:/m\n      role: confirm\n", "eval a: options.articles: .*ends before it starts"),
])
def test_sweep_files_with_shared_select_and_confirm_data_are_refused(tmp_path, evals, message):
    spec = _role_sweep(tmp_path, evals)
    runner = FakeRunner()
    with pytest.raises(ConfigError, match=message):
        sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), runner)
    assert runner.calls == []


def test_disjoint_splits_of_one_benchmark_or_other_benchmarks_may_select_and_confirm(tmp_path):
    for evals in (SELECT_CONFIRM, "    - benchmark: a=xquad-r:/d\n      role: select\n"
                                  "    - benchmark: b=mlqa-r:/d\n      role: confirm\n"):
        plan, _, options = sweep.build_plan(_parse([_role_sweep(tmp_path, evals), "--out", tmp_path / "sw"]))
        assert [e.role for e in plan.evals if e.role] == ["select", "confirm"]


def _xquad_like(folder: Path, articles: list[int]) -> Path:
    """An XQuAD-R-like folder (en, de) holding the given articles, in that order: article k has
    one paragraph of two sentences and two questions (ids a{k}q0, a{k}q1), like no other article."""
    for lang in ("en", "de"):
        data = []
        for k in articles:
            sentences = [f"{lang} article {k} opens here.", f"{lang} article {k} ends here."]
            context = " ".join(sentences)
            data.append({"title": f"A{k}", "paragraphs": [{
                "context": context, "sentences": sentences,
                "sentence_breaks": [[0, len(sentences[0])], [len(sentences[0]) + 1, len(context)]],
                "qas": [{"id": f"a{k}q{i}", "question": f"{lang} question {i} on article {k}?",
                         "answers": [{"text": "", "answer_start": 0 if i == 0 else len(sentences[0]) + 1}]}
                        for i in range(2)]}]})
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{lang}.json").write_text(json.dumps({"version": "1", "data": data}), encoding="utf-8")
    return folder


def _select_confirm(select: str, confirm: str) -> str:
    return (f"    - benchmark: sel={select.split(' ', 1)[0]}\n" + _options(select) + "      role: select\n"
            f"    - benchmark: conf={confirm.split(' ', 1)[0]}\n" + _options(confirm) + "      role: confirm\n")


def _options(entry: str) -> str:
    """'bench:path articles' -> an options line when articles are given."""
    parts = entry.split(" ", 1)
    return f"      options: {{articles: '{parts[1]}'}}\n" if len(parts) > 1 else ""


@pytest.mark.parametrize("confirm, message", [
    # the dev files copied with their articles in another order: copy articles 2-3 are dev articles 0-1
    ("copy 2-3", r"share data: query group 'a0q0' is in both \(4 shared groups\)"),
    # the full release holding the dev half
    ("full", r"share data: query group 'a0q0' is in both \(4 shared groups\)"),
    ("full 1-5", r"share data: query group 'a1q0' is in both \(2 shared groups\)"),
])
def test_select_and_confirm_holding_the_same_questions_in_other_folders_are_refused(tmp_path, confirm, message):
    dev = _xquad_like(tmp_path / "dev", [0, 1, 2, 3])
    folders = {"copy": _xquad_like(tmp_path / "copy", [2, 3, 0, 1]), "full": _xquad_like(tmp_path / "full", list(range(6)))}
    name, _, articles = confirm.partition(" ")
    spec = _role_sweep(tmp_path, _select_confirm(f"xquad-r:{dev} 0-1", f"xquad-r:{folders[name]} {articles}".strip()))
    runner = FakeRunner()
    with pytest.raises(ConfigError, match=rf"^eval: sel \(role select, xquad-r:{dev}, articles 0-1\) and conf "
                                          rf"\(role confirm, xquad-r:{folders[name]}.*\) {message}; select and "
                                          "confirm on disjoint questions$"):
        sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), runner)
    assert runner.calls == [] and not (tmp_path / "sw").exists()


def test_a_candidate_text_shared_with_another_benchmark_is_refused(tmp_path):
    dev = _xquad_like(tmp_path / "dev", [0, 1])
    other = tmp_path / "other.jsonl"      # another format and other ids, one sentence of dev article 1
    lines = [{"type": "collection", "name": "other"},
             {"type": "query", "id": "q", "lang": "en", "text": "Where?", "group": "g"},
             {"type": "candidate", "id": "c", "lang": "en", "text": "EN article 1, ends here", "groups": ["g"]}]
    other.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    spec = _role_sweep(tmp_path, _select_confirm(f"xquad-r:{dev}", f"jsonl:{other}"))
    with pytest.raises(ConfigError, match=r"share data: candidate text 'en article 1 ends here.' is in both "
                                          r"\(1 shared normalized texts\)"):
        sweep.build_plan(_parse([spec, "--out", tmp_path / "sw"]))


def test_disjoint_articles_of_a_reordered_copy_select_and_confirm(tmp_path, caplog):
    dev = _xquad_like(tmp_path / "dev", [0, 1, 2, 3])
    copy = _xquad_like(tmp_path / "copy", [2, 3, 0, 1])      # copy articles 0-1 are dev articles 2-3
    spec = _role_sweep(tmp_path, _select_confirm(f"xquad-r:{dev} 0-1", f"xquad-r:{copy} 0-1"))
    runner = FakeRunner()
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), runner) == 0
    assert runner.calls
    with caplog.at_level("WARNING"):        # data not on disk: path rules only, and it says so
        sweep.build_plan(_parse([_role_sweep(tmp_path, SELECT_CONFIRM), "--out", tmp_path / "sw2"]))
    assert "eval sel: /d not found here: its select/confirm disjointness is checked by path only" in caplog.text


def test_selection_without_confirm_split_or_unfinished_groups_says_so():
    from mixlingual.experiments.sweep.cells import EvalSpec
    from mixlingual.experiments.sweep.selection import select_and_confirm
    from mixlingual.experiments.sweep.report import render_selection

    def stat(v):
        return {"settings.multi.map": {"mean": v, "std": 0.0, "n": 1, "values": [v]}}

    summary = {"a": {"s": stat(0.5), "c": {}}, "b": {"s": stat(0.7), "c": stat(0.6)}, "late": {"s": {}, "c": {}}}
    select = EvalSpec("s", "xquad-r", "/d", role="select", options={"articles": "0-1"})
    confirm = EvalSpec("c", "xquad-r", "/d", role="confirm", options={"articles": "2-3"}, groups=("b",))
    assert select_and_confirm(summary, ["a", "b"], [EvalSpec("x", "demo", None)], metric="settings.multi.map",
                              mode="max") is None                            # no roles: as before
    chosen = select_and_confirm(summary, ["a", "b", "late"], [select], metric="settings.multi.map", mode="min")
    assert chosen["best"] == "a" and sorted(chosen["select_scores"]) == ["a", "b"]   # 'late' has no number yet
    text = "\n".join(render_selection(chosen, [select], summary, []))
    assert "confirmed on nothing (no split has role: confirm)" in text and "lower is better" in text
    chosen = select_and_confirm(summary, ["a", "b"], [select, confirm], metric="settings.multi.map", mode="min")
    assert chosen["confirm"]["c"] == {"evaluated": False, "value": None, "rank": None, "n_groups": 1,
                                      "best_on_this_split": "b"}
    assert "| c | confirm | - |" in "\n".join(render_selection(chosen, [select, confirm], summary, []))
    nothing = select_and_confirm({"a": {"s": {}}}, ["a"], [select], metric="settings.multi.map", mode="max")
    assert "Nothing selected yet" in "\n".join(render_selection(nothing, [select], {}, []))


def test_recipe_seeds_run_side_recipes_on_the_first_n_seeds_only(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    args = parser.parse_args([str(spec), "--out", str(tmp_path / "o")])
    body = (f"sweep:\n  base_config: {base}\n  seeds: 3\n  recipes:\n    xx: {{sampling.alpha: 1.0}}\n"
            f"    side: {{sampling.alpha: 0.25}}\n  eval: ['mlqa-r:/d']\n")
    spec.write_text(body + "  recipe_seeds: {side: 2}\n")
    _, cells, _ = sweep.build_plan(args)
    assert [c.slug for c in cells] == ["xx__seed=0", "xx__seed=1", "xx__seed=2", "side__seed=0", "side__seed=1"]
    for bad, message in [("{nope: 1}", "recipe_seeds.nope: no such recipe"),
                         ("{side: 4}", "recipe_seeds.side: expected a whole number from 1 to 3"),
                         ("{side: 0}", "recipe_seeds.side: expected a whole number"),
                         ("[side]", "recipe_seeds: expected a mapping")]:
        spec.write_text(body + f"  recipe_seeds: {bad}\n")
        with pytest.raises(ConfigError, match=message):
            sweep.build_plan(args)


def test_metric_lists_parse_and_unknown_names_are_refused():
    assert sweep.parse_metrics("map,r@1, mrr@10") == ["map", "r@1", "mrr@10"]
    assert sweep.parse_metrics(["map", "mrr@10"]) == ["map", "mrr@10"]
    with pytest.raises(ConfigError, match=r"unknown per-query metric\(s\) \['mrr'\]"):
        sweep.parse_metrics("map,mrr")
    with pytest.raises(ConfigError, match="expected one or more"):
        sweep.parse_metrics("map,,r@1")


def test_several_metrics_are_each_compared_with_an_interval(tmp_path):
    args = _args(tmp_path, baseline="sampling.alpha=0", metric="map,mrr@10")
    assert sweep.run_sweep(args, FakeRunner()) == 0
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert summary["significance"]["metrics"] == ["map", "mrr@10"]
    rows = {(c["group"], c["setting"], c["metric"]): c for c in summary["comparisons"]}
    # the fake's MRR@10 is 0.5 for every query of every cell: no difference, a zero-width interval
    mrr = rows[("sampling.alpha=1", "mono", "mrr@10")]
    assert mrr["mean_diff"] == pytest.approx(0.0) and mrr["ci_low"] == pytest.approx(0.0) == mrr["ci_high"]
    assert rows[("sampling.alpha=1", "mono", "map")]["mean_diff"] == pytest.approx(0.2)
    assert ("sampling.alpha=1", "multi", "rank_distance") in rows
    report = (tmp_path / "sw" / "report.md").read_text()
    assert "| sampling.alpha=1 | sampling.alpha=0 | mono | mrr@10 |" in report and "mono MRR@10" in report


class CurveRunner(FakeRunner):
    """FakeRunner whose training also writes dev curves and batch counts, as `mixlingual train` does."""

    def __call__(self, argv, log_path):
        code = super().__call__(argv, log_path)
        if argv[3] == "train" and code == 0:
            out = Path(dict(a.split("=", 1) for a in argv if a.startswith("output.dir="))["output.dir"])
            seed = int(dict(a.split("=", 1) for a in argv if a.startswith("train.seed="))["train.seed"])
            records = [{"type": "eval", "step": step, "per_language": {"multi": {
                lang: {"map": scale * (0.5 + 0.01 * seed), "mrr@10": scale * 0.6} for lang in ("ar", "de", "en")}}}
                for step, scale in ((0, 0.8), (5, 1.0))]
            (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            (out / "config.yaml").write_text(f"train: {{batch_size: 4, seed: {seed}}}\n")
            (out / "summary.json").write_text(json.dumps({"world_size": 1}))
            (out / "batch_counts.json").write_text(json.dumps({"pairs": {"ar->de": 3, "de->de": 5}}))
        return code


def test_convergence_of_a_sweep_takes_language_groups(tmp_path):
    args = _args(tmp_path, language_groups="trained=ar,de")
    args.convergence = True
    assert sweep.run_sweep(args, CurveRunner()) == 0
    report = json.loads((tmp_path / "sw" / "convergence" / "convergence.json").read_text())
    assert report["language_groups"] == {"trained": ["ar", "de"], "other": ["en"]}
    assert report["language_groups_source"] == "--language-groups"
    assert {r["name"]: len(r["seeds"]) for r in report["recipes"]} == {
        "sampling.alpha=0": 2, "sampling.alpha=0.5": 2, "sampling.alpha=1": 2}
    # without the option the groups come from the cells' batch_counts.json
    args = _args(tmp_path)
    args.convergence = True
    assert sweep.run_sweep(args, CurveRunner()) == 0
    report = json.loads((tmp_path / "sw" / "convergence" / "convergence.json").read_text())
    assert report["language_groups"] == {"passages": ["de"], "queries-only": ["ar"], "unseen": ["en"]}


def test_selection_compares_groups_on_the_seeds_they_all_have():
    from mixlingual.experiments.sweep.cells import EvalSpec
    from mixlingual.experiments.sweep.selection import select_and_confirm

    evals = [EvalSpec("a", "xquad-r", "/d", role="select"), EvalSpec("b", "xquad-r", "/d", role="confirm")]
    summary = {g: {"a": {"m": {"mean": mean, "n": 5, "std": 0}}, "b": {"m": {"mean": mean, "n": 5, "std": 0}}}
               for g, mean in (("many", 0.62), ("few", 0.60))}
    # "many" has 5 seeds (its later seeds are better), "few" only seeds 0-1, where it leads
    per_seed = {"many": {"a": {0: 0.58, 1: 0.58, 2: 0.66, 3: 0.66, 4: 0.62}}, "few": {"a": {0: 0.60, 1: 0.60}}}
    assert select_and_confirm(summary, ["many", "few"], evals, metric="m", mode="max")["best"] == "many"
    chosen = select_and_confirm(summary, ["many", "few"], evals, metric="m", mode="max", per_seed=per_seed)
    assert chosen["best"] == "few" and chosen["seeds_compared"] == [0, 1]
    assert chosen["select_scores"] == {"many": pytest.approx(0.58), "few": pytest.approx(0.60)}


class MergingFakeRunner(FakeRunner):
    """FakeRunner that also plays `mixlingual merge`: the merged folder carries the tuned model's facts."""

    def __call__(self, argv, log_path):
        if argv[3] != "merge":
            return super().__call__(argv, log_path)
        self.calls.append(argv)
        tuned, out = Path(argv[argv.index("--weight") - 1]), Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "fake.json").write_text((tuned / "fake.json").read_text())
        (out / "merge.json").write_text("{}")
        return 0


def test_an_eval_entry_can_evaluate_the_model_merged_with_its_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"sweep:\n  base_config: {base}\n  seeds: 1\n  recipes:\n    hybrid: {{sampling.alpha: 0.5}}\n"
                    "  eval:\n    - dev=xquad-r:/d\n    - benchmark: xquad-r:/d\n      merge_with_base: 0.5\n")
    args = _parse([spec, "--out", tmp_path / "sw"])
    runner = MergingFakeRunner()
    assert sweep.run_sweep(args, runner) == 0
    assert [c[3] for c in runner.calls] == ["train", "evaluate", "merge", "evaluate"]
    cell = tmp_path / "sw" / "cells" / "hybrid__seed=0"
    merge = runner.calls[2]
    assert merge[merge.index("--base-from-config") + 1] == str(cell / "train" / "config.yaml")
    assert merge[merge.index("--weight") - 1] == str(cell / "train" / "model")
    assert merge[merge.index("--weight") + 1] == "0.5" and merge[-1] == str(cell / "merged-0.5")
    evaluated = runner.calls[3]
    assert evaluated[evaluated.index("--model") + 1] == str(cell / "merged-0.5")
    assert evaluated[evaluated.index("--out") + 1] == str(cell / "eval" / "xquad-r-merged-0.5")
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert set(summary["metrics"]["hybrid"]) == {"dev", "xquad-r-merged-0.5"}
    # a later evaluation entry on the same weight reuses the merged folder: no second merge
    spec.write_text(spec.read_text() + "    - benchmark: other=mlqa-r:/m\n      merge_with_base: 0.5\n")
    again = MergingFakeRunner()
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), again) == 0
    assert [c[3] for c in again.calls] == ["evaluate"]
    with pytest.raises(ConfigError, match=r"merge_with_base must be a number in \[0, 1\]"):
        sweep.EvalSpec.from_entry({"benchmark": "xquad-r:/d", "merge_with_base": 2})


def test_a_merged_and_debiased_entry_fits_on_the_merged_model(tmp_path):
    """merge_with_base + debias in one entry: merge first, fit on the merged model, evaluate it with that fit."""

    class Runner(MergingFakeRunner):
        def __call__(self, argv, log_path):
            if argv[3] != "debias":
                return super().__call__(argv, log_path)
            self.calls.append(argv)
            out = argv[argv.index("--out") + 1]
            for path in (out, out + ".json"):
                open(path, "w").close()
            return 0

    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"sweep:\n  base_config: {base}\n  seeds: 1\n  recipes:\n    hybrid: {{sampling.alpha: 0.5}}\n"
                    "  eval:\n    - benchmark: mc=xquad-r:/d\n      merge_with_base: 0.5\n"
                    "      debias: {fit: 'sib200-bitext:/s', method: center}\n")
    runner = Runner()
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), runner) == 0
    assert [c[3] for c in runner.calls] == ["train", "merge", "debias", "evaluate"]
    merged = str(tmp_path / "sw" / "cells" / "hybrid__seed=0" / "merged-0.5")
    _, _, fit, evaluate = runner.calls
    assert fit[fit.index("--model") + 1] == merged == evaluate[evaluate.index("--model") + 1]
    assert evaluate[evaluate.index("--debias") + 1] == fit[fit.index("--out") + 1]
