"""Training metrics on disk: JSONL (every record), CSV (one file per record type), TensorBoard.

    OUT/metrics.jsonl     {"type": "train", "step": 10, "loss": ..., "lr": ..., "kind": "X-X", ...}
                          {"type": "eval",  "step": 100, "settings": {...}, "per_language": {...}, ...}
    OUT/train_log.csv     flat train records
    OUT/eval_log.csv      flat eval records (settings.multi.map, per_language.mono.de.mrr@10, ...)
    OUT/tensorboard/      scalars, when tensorboard is installed and output.tensorboard is on

Only rank 0 writes. On resume, records after the resumed step (written by the killed run
after its last checkpoint) are dropped, so the logs read as if the run was never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from mixlingual.io import write_atomic

EVAL_METRICS_KEPT = ("map", "mrr@10")  # per-language metrics worth a column (convergence reports)
RECORD_TYPES = ("train", "eval")  # the record types the training loop logs, one CSV each


def flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def eval_record(metrics: dict) -> dict:
    """The part of a metrics.json dict the training log keeps: settings, rank distance, and
    per-language mAP / MRR@10 (the pairwise matrices stay in the evaluation's own output)."""
    per_language = {setting: {lang: {m: v for m, v in values.items() if m in EVAL_METRICS_KEPT}
                              for lang, values in langs.items()}
                    for setting, langs in metrics.get("per_language", {}).items()}
    return {"settings": metrics.get("settings", {}), "rank_distance": metrics.get("rank_distance", {}),
            "per_language": per_language}


class CsvLog:
    """One flat CSV of one record type, appended a row per record (the file is never re-read).

    The header is the columns seen so far; a record bringing a new column rewrites the file once
    with the wider header (rare: the first eval record, a new metric), every other record is one
    appended and flushed line, so logging costs the same at step 10 and at step 100,000.
    """

    def __init__(self, path: Path, rows: list[dict] = ()):
        self.path = path
        self.rows = [flatten(r) for r in rows]  # kept only to widen the header
        self.columns: list[str] = list(dict.fromkeys(key for row in self.rows for key in row))
        if self.rows:
            self._rewrite()
        elif path.exists():
            path.unlink()

    def append(self, record: dict) -> None:
        row = flatten(record)
        self.rows.append(row)
        if not self.path.exists() or any(key not in self.columns for key in row):
            self.columns = list(dict.fromkeys([*self.columns, *row]))
            self._rewrite()
            return
        with self.path.open("a", encoding="utf-8", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns).writerow(row)
            handle.flush()

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.path, buffer.getvalue())


class MetricsLog:
    """Append-only metrics for one run (a no-op on ranks other than 0)."""

    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None):
        self.enabled = enabled
        self.dir = Path(out_dir)
        self.jsonl = self.dir / "metrics.jsonl"
        self.csvs: dict[str, CsvLog] = {}
        self.writer = None
        if not enabled:
            return
        kept: list[dict] = []
        if resume_step is not None and self.jsonl.is_file():
            lines = self.jsonl.read_text(encoding="utf-8").splitlines()
            kept = [r for r in map(json.loads, filter(str.strip, lines)) if r.get("step", 0) <= resume_step]
            write_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        elif self.jsonl.exists():
            self.jsonl.unlink()
        for kind in RECORD_TYPES:
            self._csv(kind, [r for r in kept if r.get("type") == kind])
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.dir / "tensorboard"), purge_step=resume_step)
            except ImportError:  # tensorboard is optional
                self.writer = None

    def _csv(self, kind: str, rows: list[dict] = ()) -> CsvLog:
        if kind not in self.csvs:
            self.csvs[kind] = CsvLog(self.dir / f"{kind}_log.csv", rows)
        return self.csvs[kind]

    def log(self, record: dict) -> None:
        """Append one record ({"type": ..., "step": ..., ...})."""
        if not self.enabled:
            return
        with self.jsonl.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in flatten(record).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    self.writer.add_scalar(f"{record['type']}/{key}", value, record["step"])
        self._csv(record["type"]).append(record)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
