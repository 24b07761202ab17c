"""`mixlingual robustness --summarize` on hand-made robustness folders: drops, intervals, refusals."""

import json
from pathlib import Path

import numpy as np
import pytest

from mixlingual.cli import main
from mixlingual.errors import DataError
from mixlingual.experiments.robustness.attack import AttackConfig, QueryAttack, summarize
from mixlingual.experiments.robustness.summary import summarize_robustness

LANGS = ("de", "en")
GROUPS = [f"g{i}" for i in range(8)]
QUERIES = [(f"{lang}:{g}", lang, g) for g in GROUPS for lang in LANGS]   # (id, language, group)


def write_evaluation(folder: Path, scores: dict[str, float], queries=QUERIES) -> None:
    """An evaluation folder as `mixlingual evaluate` writes it, reduced to what the summary reads:
    per_query.jsonl rows (multi, mono and cross rows of every query, all scored `scores[query]`)
    and a metrics.json."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for qid, lang, group in queries:
        s = scores[qid]
        base = {"query": qid, "group": group, "qlang": lang, "map": s, "mrr@10": s, "r@1": float(s > 0.5)}
        rows.append({"setting": "multi", **base, "clang": "all", "rank_distance": 10 * (1 - s)})
        rows += [{"setting": "mono" if y == lang else "cross", **base, "clang": y} for y in LANGS]
    (folder / "per_query.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "metrics.json").write_text("{}", encoding="utf-8")


def write_model(folder: Path, clean: dict, perturbed: dict[str, dict], *, perturb_seed=0, attack=None,
                pool="multi") -> Path:
    """One model's robustness folder: DIR/clean, DIR/<name>-<rate> per perturbation ('typo:0.1' ->
    scores), and DIR/attack/attack.json from (query, rank before, rank after) triples."""
    write_evaluation(folder / "clean", clean)
    for spec, scores in perturbed.items():
        name, rate = spec.split(":")
        sub = folder / f"{name}-{float(rate):g}"
        write_evaluation(sub, scores)
        (sub / "perturbation.json").write_text(json.dumps({"name": name, "rate": float(rate), "seed": perturb_seed,
                                                           "realized_rate": float(rate)}), encoding="utf-8")
    if attack is not None:
        info = {qid: (lang, group) for qid, lang, group in QUERIES}
        results = [QueryAttack(qid, *info[qid], "text", "txet", 1, before, after, 5) for qid, before, after in attack]
        report = {"config": vars(AttackConfig(budget=3, pool=pool)), "summary": summarize(results),
                  "queries": [r.to_row() for r in results]}
        (folder / "attack").mkdir(parents=True)
        (folder / "attack" / "attack.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


def scores_with(drop_by_lang: dict[str, float], clean: dict[str, float]) -> dict[str, float]:
    return {qid: clean[qid] + drop_by_lang[lang] for qid, lang, _ in QUERIES}


CLEAN = {qid: 0.6 + 0.04 * i for i, (qid, _, _) in enumerate(QUERIES)}   # 0.6 .. 1.2: any value works


def _entry(rows, **fields):
    found = [r for r in rows if all(r[k] == v for k, v in fields.items())]
    assert len(found) == 1, (fields, len(found))
    return found[0]


def test_mean_drop_equals_a_hand_computation(tmp_path, capsys):
    # seed 0 loses 0.1 on de and 0.2 on en, seed 1 0.3 and 0.4
    seeds = {0: {"de": -0.1, "en": -0.2}, 1: {"de": -0.3, "en": -0.4}}
    attack = {0: [("de:g0", 1, 4), ("en:g0", 2, 2), ("de:g1", 1, 20)], 1: [("de:g0", 1, 1), ("en:g0", 1, 5),
                                                                           ("de:g1", 3, 3)]}
    args = []
    for seed, drops in seeds.items():
        folder = write_model(tmp_path / f"x-x__seed={seed}", CLEAN, {"typo:0.1": scores_with(drops, CLEAN)},
                             attack=attack[seed])
        args.append(f"x-x={folder}")
    assert main(["robustness", "--summarize", *args, "--n-resamples", "200", "--out", str(tmp_path / "sum")]) == 0
    summary = json.loads((tmp_path / "sum" / "summary.json").read_text())
    drops = summary["drops"]
    for setting in ("multi", "mono", "cross"):
        all_langs = _entry(drops, condition="typo-0.1", setting=setting, metric="map", lang="all")
        assert all_langs["drop"] == pytest.approx((-0.1 - 0.2 - 0.3 - 0.4) / 4)
        assert all_langs["per_seed"] == pytest.approx([-0.15, -0.35])
        assert all_langs["clean"] == pytest.approx(np.mean(list(CLEAN.values())))
        assert _entry(drops, condition="typo-0.1", setting=setting, metric="map", lang="de")["drop"] == \
            pytest.approx(-0.2)
        assert _entry(drops, condition="typo-0.1", setting=setting, metric="map", lang="en")["drop"] == \
            pytest.approx(-0.3)
    rank_distance = _entry(drops, condition="typo-0.1", metric="rank_distance", lang="all")
    assert rank_distance["drop"] == pytest.approx(2.5) and rank_distance["n_groups"] == len(GROUPS)
    # the attack: reciprocal rank cut at 10 and top-1 hit, before and after, per query
    mrr = _entry(drops, condition="attack", metric="mrr@10", lang="all")
    # summary.json holds 6 decimals (write_json_table_atomic): -0.8 / 3 is written as -0.266667
    assert mrr["per_seed"] == pytest.approx([((0.25 - 1) + 0 + (0 - 1)) / 3, (0 + (0.2 - 1) + 0) / 3], abs=1e-6)
    assert mrr["drop"] == pytest.approx(np.mean(mrr["per_seed"]), abs=1e-6) and mrr["n_groups"] == 2
    hit = _entry(drops, condition="attack", metric="r@1", lang="de")
    assert hit["drop"] == pytest.approx(np.mean([-1, -1, 0, 0]))
    report = (tmp_path / "sum" / "report.md").read_text()
    assert "### Drop: multi mAP" in report and "| typo-0.1 | -0.250 [" in report
    assert (tmp_path / "sum" / "robustness.png").stat().st_size > 0


def _seed_folders(tmp_path, label, drops_per_seed: list[dict[str, float]], **kwargs) -> list[Path]:
    return [write_model(tmp_path / f"{label}__seed={k}", CLEAN, {"typo:0.1": drops}, **kwargs)
            for k, drops in enumerate(drops_per_seed)]


def _varying_drop(offset: float = 0.0, scale: float = 1.0) -> dict[str, float]:
    """Per-query perturbed scores: a drop that varies over question groups (so intervals have width)."""
    rng = np.random.default_rng(7)
    by_group = {g: -0.2 + 0.1 * rng.normal() for g in GROUPS}
    return {qid: CLEAN[qid] + offset + scale * by_group[group] for qid, _, group in QUERIES}


def test_interval_widens_when_seeds_disagree(tmp_path):
    agree = _seed_folders(tmp_path, "agree", [_varying_drop() for _ in range(3)])
    # same seed-averaged drop per row, but the seeds disagree by +-0.3
    disagree = _seed_folders(tmp_path, "disagree", [_varying_drop(offset) for offset in (-0.3, 0.0, 0.3)])
    summary = summarize_robustness({"agree": agree, "disagree": disagree}, n_resamples=2000)
    a = _entry(summary["drops"], recipe="agree", metric="map", setting="multi", lang="all")
    d = _entry(summary["drops"], recipe="disagree", metric="map", setting="multi", lang="all")
    assert a["drop"] == pytest.approx(d["drop"])
    assert a["ci_low"] < a["drop"] < a["ci_high"] and d["ci_low"] < d["drop"] < d["ci_high"]
    assert d["ci_high"] - d["ci_low"] > 2 * (a["ci_high"] - a["ci_low"])


def test_difference_of_drops_between_recipes(tmp_path):
    recipes = {"x-x": _seed_folders(tmp_path, "x-x", [_varying_drop(offset) for offset in (-0.02, 0.02)]),
               "x-y": _seed_folders(tmp_path, "x-y", [_varying_drop(offset - 0.05) for offset in (-0.02, 0.02)]),
               "hybrid": _seed_folders(tmp_path, "hybrid", [_varying_drop(offset + 0.1) for offset in (0.03, -0.03)])}
    summary = summarize_robustness(recipes, baselines=["x-x", "x-y"], n_resamples=2000)
    diffs = summary["differences"]
    pairs = {(r["recipe"], r["baseline"]) for r in diffs}
    assert pairs == {("hybrid", "x-x"), ("x-y", "x-x"), ("hybrid", "x-y")}
    hybrid_xx = _entry(diffs, recipe="hybrid", baseline="x-x", setting="multi", metric="map", lang="all")
    hybrid = _entry(summary["drops"], recipe="hybrid", setting="multi", metric="map", lang="all")["drop"]
    xx = _entry(summary["drops"], recipe="x-x", setting="multi", metric="map", lang="all")["drop"]
    assert hybrid_xx["difference"] == pytest.approx(hybrid - xx) == pytest.approx(0.1)
    assert 0 < hybrid_xx["ci_low"] < 0.1 < hybrid_xx["ci_high"] and hybrid_xx["seeds_paired"]
    xy_xx = _entry(diffs, recipe="x-y", baseline="x-x", setting="multi", metric="map", lang="en")
    assert xy_xx["difference"] == pytest.approx(-0.05) and xy_xx["ci_high"] < 0
    assert _entry(diffs, recipe="hybrid", baseline="x-y", setting="cross", metric="map",
                  lang="all")["difference"] == pytest.approx(0.15)


def test_refuses_a_perturbed_folder_missing_queries(tmp_path, capsys):
    folder = write_model(tmp_path / "m__seed=0", CLEAN, {"typo:0.1": _varying_drop(), "typo:0.2": _varying_drop()})
    write_evaluation(folder / "typo-0.2", _varying_drop(), queries=QUERIES[:-1])   # one query short
    assert main(["robustness", "--summarize", f"m={folder}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(folder / "typo-0.2") in err and "3 of the clean folder's 48" in err and "missing" in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_refuses_seeds_run_on_different_perturbations(tmp_path):
    first = write_model(tmp_path / "m__seed=0", CLEAN, {"typo:0.1": _varying_drop()})
    other = write_model(tmp_path / "m__seed=1", CLEAN, {"typo:0.1": _varying_drop(), "word-dropout:0.3": CLEAN})
    with pytest.raises(DataError, match=r"recipe m: seeds were run on different .*differing: word-dropout-0.3") as err:
        summarize_robustness({"m": [first, other]}, n_resamples=100)
    assert str(first) in str(err.value) and str(other) in str(err.value)
    reseeded = write_model(tmp_path / "m__seed=2", CLEAN, {"typo:0.1": _varying_drop()}, perturb_seed=5)
    with pytest.raises(DataError, match="differing: typo-0.1"):
        summarize_robustness({"m": [first, reseeded]}, n_resamples=100)


def test_refuses_recipes_evaluated_on_different_queries(tmp_path):
    fewer = QUERIES[:-2]
    a = write_model(tmp_path / "a__seed=0", CLEAN, {"typo:0.1": _varying_drop()})
    b = tmp_path / "b__seed=0"
    write_evaluation(b / "clean", CLEAN, queries=fewer)
    write_evaluation(b / "typo-0.1", _varying_drop(), queries=fewer)
    (b / "typo-0.1" / "perturbation.json").write_text(json.dumps({"name": "typo", "rate": 0.1, "seed": 0}))
    with pytest.raises(DataError, match="recipes a .* and b .* were evaluated on different query rows"):
        summarize_robustness({"a": [a], "b": [b]}, n_resamples=100)


def test_an_attack_in_the_mono_pool_is_summarized_under_mono(tmp_path):
    folder = write_model(tmp_path / "m__seed=0", CLEAN, {}, attack=[("de:g0", 1, 2), ("en:g1", 1, 1)], pool="mono")
    summary = summarize_robustness({"m": [folder]}, n_resamples=100)
    assert list(summary["conditions"]) == ["attack"]
    assert _entry(summary["drops"], setting="mono", metric="mrr@10", lang="all")["drop"] == pytest.approx(-0.25)
    assert not [r for r in summary["drops"] if r["setting"] == "multi"]
