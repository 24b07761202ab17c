"""Loading time of the real datasets (MLQA test -> parallel items, XQuAD-R dev, MLQA-R).

Target: MLQA test and XQuAD-R dev each load in under 10 s. As a reference measured in the same
run, the raw `json.load` of the same files is timed too, so the ratio shows the loaders' own cost.

    .venv/bin/python bench/data_loading.py --shared ../shared/data [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mixlingual.data.jsonl import read_collection, read_parallel, write_collection, write_parallel
from mixlingual.data.registry import load_collection, load_parallel
from mixlingual.data.sentences import cached_sentence_spans


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        cached_sentence_spans.cache_clear()  # time cold splitting every round
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def raw_json(files) -> float:
    """Parse the same files with the json module alone (JSONL: line by line)."""
    start = time.perf_counter()
    for f in files:
        with open(f, encoding="utf-8") as handle:
            if f.suffix == ".jsonl":
                for line in handle:
                    json.loads(line)
            else:
                json.load(handle)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/data_loading.json"))
    args = parser.parse_args()
    mlqa, xquad = args.shared / "mlqa", args.shared / "xquad-r-dev"
    cases = {
        "mlqa test -> parallel": (lambda: load_parallel("mlqa", mlqa), sorted((mlqa / "MLQA_V1/test").glob("*.json"))),
        "mlqa dev -> parallel (sentences)": (lambda: load_parallel("mlqa", mlqa, split="dev"),
                                             sorted((mlqa / "MLQA_V1/dev").glob("*.json"))),
        "xquad-r dev -> collection": (lambda: load_collection("xquad-r", xquad), sorted(xquad.glob("*.json"))),
        "mlqa-r -> collection": (lambda: load_collection("mlqa-r", mlqa),
                                 sorted((mlqa / "MLQA_V1/dev").glob("dev-context-*-question-*.json"))),
    }
    tmp = Path(tempfile.mkdtemp(prefix="mixlingual-bench-"))
    write_parallel(load_parallel("mlqa", mlqa), tmp / "mlqa-test.jsonl")
    write_collection(load_collection("mlqa-r", mlqa), tmp / "mlqa-r.jsonl")
    cases["canonical JSONL (mlqa test) -> validated items"] = (lambda: read_parallel(tmp / "mlqa-test.jsonl"),
                                                               [tmp / "mlqa-test.jsonl"])
    cases["canonical JSONL (mlqa-r) -> validated collection"] = (lambda: read_collection(tmp / "mlqa-r.jsonl"),
                                                                 [tmp / "mlqa-r.jsonl"])
    rows = {}
    print(f"{'case':<50}{'seconds':>9}{'json.load':>11}{'ratio':>8}{'records':>9}")
    for name, (fn, files) in cases.items():
        seconds, result = best_of(args.repeat, fn)
        reference = min(raw_json(files) for _ in range(args.repeat))
        records = len(result) if isinstance(result, list) else len(result.queries) + len(result.candidates)
        rows[name] = {"seconds": round(seconds, 3), "json_load_seconds": round(reference, 3),
                      "ratio": round(seconds / reference, 2), "records": records, "under_10s": seconds < 10}
        print(f"{name:<50}{seconds:>9.2f}{reference:>11.2f}{seconds / reference:>8.1f}{records:>9}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
