"""`mixlingual tables`: the README's findings tables, laid out from a small hand-made summary.json."""

import json

from mixlingual.cli import main


def _stat(mean, std, n):
    return {"mean": mean, "std": std, "n": n}


def _summary() -> dict:
    metrics = {
        "x-x": {"dev": {"settings.mono.map": _stat(0.8114, 0.006, 2), "settings.cross.map": _stat(0.737, 0.007, 2),
                        "settings.multi.map": _stat(0.595, 0.011, 2), "settings.multi.r@1": _stat(0.745, 0.007, 2),
                        "settings.multi.mrr@10": _stat(0.809, 0.005, 2), "rank_distance.mean": _stat(159.74, 3.61, 2)},
                "other": {"settings.mono.map": _stat(0.5, 0.1, 2)}},
        "hybrid": {"dev": {"settings.mono.map": _stat(0.806, 0.0, 1), "settings.multi.map": _stat(0.614, 0.0, 1)}},
    }
    comparison = {"group": "hybrid", "baseline": "x-x", "label": "dev", "setting": "multi", "metric": "map",
                  "mean_diff": 0.019, "ci_low": 0.0104, "ci_high": 0.0271}
    return {"groups": [{"name": "x-x", "seeds": [0, 1]}, {"name": "hybrid", "seeds": [0]}], "metrics": metrics,
            "comparisons": [comparison, {**comparison, "setting": "mono", "mean_diff": -0.005, "ci_low": -0.011,
                                         "ci_high": 0.001},
                            {**comparison, "label": "other", "mean_diff": 9.0}]}


def test_tables_lay_out_means_over_seeds_and_effects(tmp_path, capsys):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_summary()))
    assert main(["tables", str(path), "--label", "dev", "--groups", "x-x,hybrid", "--vs", "x-x"]) == 0
    assert capsys.readouterr().out == (
        "| recipe | seeds | mono mAP | cross mAP | multi mAP | multi R@1 | multi MRR@10 | rank distance |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| x-x | 2 | 0.811 ± 0.006 | 0.737 ± 0.007 | 0.595 ± 0.011 | 0.745 ± 0.007 | 0.809 ± 0.005 | 159.7 ± 3.6 |\n"
        "| hybrid | 1 | 0.806 | - | 0.614 | - | - | - |\n"
        "\n"
        "| recipe - x-x | mono map | cross map | multi map | multi r@1 | multi mrr@10 | multi rank dist. |\n"
        "|---|---|---|---|---|---|---|\n"
        "| hybrid | -0.005 [-0.011, +0.001] | - | +0.019 [+0.010, +0.027]* | - | - | - |\n")


def test_tables_default_to_every_group_and_refuse_an_unknown_label(tmp_path, capsys):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_summary()))
    assert main(["tables", str(path), "--label", "dev"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| x-x", "| hybrid"] and len(rows) == 4   # no --vs: one table
    assert main(["tables", str(path), "--label", "test"]) == 2
    assert "--label test: the summary has dev, other" in capsys.readouterr().err
    assert main(["tables", str(tmp_path / "missing.json"), "--label", "dev"]) == 2
