"""mixlingual.io: JSON tables written one row per line load back as the same data."""
import json
import math

from mixlingual.io import round_floats, write_json_table_atomic


def test_table_json_one_row_per_line_and_rounded(tmp_path):
    rows = [{"recipe": "x-x", "lang": lang, "drop": -0.027148136051933225 * k, "per_seed": [0.1234567891, -1 / 3]}
            for k, lang in enumerate(["all", "vi", "zh"])]
    data = {"recipes": ["x-x"], "n_resamples": 2000, "empty": [], "drops": rows, "names": ["a", "b"]}
    path = write_json_table_atomic(tmp_path / "summary.json", data, digits=6)
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded == round_floats(data, 6)
    assert loaded["drops"][1]["drop"] == -0.027148 and loaded["drops"][2]["per_seed"] == [0.123457, -0.333333]
    lines = text.splitlines()
    for row in loaded["drops"]:   # each row whole on its own line
        assert sum(json.dumps(row, separators=(",", ":")) in line for line in lines) == 1
    assert text.endswith("}\n") and not (tmp_path / "summary.json.tmp").exists()


def test_round_floats_keeps_non_finite_and_non_floats():
    value = round_floats({"a": [float("nan"), 1, True, "0.123456789", (1.23456789,)]}, 3)
    assert math.isnan(value["a"][0]) and value["a"][1:4] == [1, True, "0.123456789"] and value["a"][4] == [1.235]
