"""bench/gemm_ceiling.py on a toy layer: the products it times are exactly the FLOPs it counts."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
gemm_ceiling = pytest.importorskip("gemm_ceiling")


def test_toy_step_products_cover_the_useful_flops(tmp_path):
    out = tmp_path / "ceiling.json"
    assert gemm_ceiling.main(["--hidden", "32", "--intermediate", "64", "--layers", "2",
                              "--heads", "4", "--texts", "2", "--query-length", "4", "--passage-length", "8",
                              "--repeats", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    timed = sum(row["flops"] * row["count"] for row in result["products"])
    assert timed == pytest.approx(result["useful_gflop_per_step"] * 1e9, rel=1e-12)
    # 4 linear layers x 3 GEMMs + 2 buckets x 6 attention products, each once per layer
    assert len(result["products"]) == 24 and {row["count"] for row in result["products"]} == {2}
    floor = {row["product"]: row for row in result["elementwise_floor"]}
    assert floor["LayerNorm forward + backward (fp32)"]["count"] == 4 and all(row["seconds"] > 0 for row in floor.values())
    assert result["gemm_cpu_seconds_per_step"] > 0 and result["ceiling_share"] > result["gemm_plus_floor_share"] > 0
