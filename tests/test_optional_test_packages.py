"""Optional test packages (pytrec_eval, ranx, hypothesis) skip only the tests that use them.

A module-level `pytest.importorskip` skips every test of its module, so on a machine without
the package the hand-computed metric tests and the search tests silently stopped running.
This runs those modules in a child pytest where the packages cannot be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
BLOCKED = ("pytrec_eval", "ranx", "hypothesis")
CHILD = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # `import name` raises ImportError, as where it is not installed
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def _outcomes(tmp_path, *modules) -> dict[str, str]:
    """test id -> PASSED / SKIPPED / FAILED / ERROR for `modules` run without the packages."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, "-q", "-rA", "-p", "no:cacheprovider", "-m", "not slow",
                           *(str(TESTS / m) for m in modules)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for line in done.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR"):
            outcomes[rest.split("::", 1)[-1].split(" ")[0]] = word
        elif word == "SKIPPED":  # "SKIPPED [n] path:line: reason" names no test; count them
            outcomes[f"skip-{len(outcomes)}"] = rest
    assert outcomes, done.stdout + done.stderr
    return outcomes


def test_only_tests_needing_an_optional_package_skip(tmp_path):
    outcomes = _outcomes(tmp_path, "test_metrics.py", "test_search.py")
    for name in ("test_hand_computed_values", "test_pessimistic_tie_rule", "test_rank_distance_and_bitext_accuracy",
                 "test_write_trec_run", "test_cache_hits_and_dedupes", "test_topk_lists_and_faiss_agree"):
        assert outcomes.get(name) == "PASSED", (name, outcomes)
    skipped = [reason for name, reason in outcomes.items() if name.startswith("skip-")]
    assert skipped and all(any(p in reason for p in BLOCKED) for reason in skipped), skipped
    assert "FAILED" not in outcomes.values() and "ERROR" not in outcomes.values(), outcomes
