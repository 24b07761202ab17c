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


class MetricsLog:
    """Append-only metrics for one run (a no-op on ranks other than 0)."""

    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None):
        self.enabled = enabled
        self.dir = Path(out_dir)
        self.jsonl = self.dir / "metrics.jsonl"
        self.records: list[dict] = []
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.jsonl.is_file():
            kept = [json.loads(line) for line in self.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
            self.records = [r for r in kept if r.get("step", 0) <= resume_step]
            write_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in self.records))
        elif self.jsonl.exists():
            self.jsonl.unlink()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.dir / "tensorboard"), purge_step=resume_step)
            except ImportError:  # tensorboard is optional
                self.writer = None

    def log(self, record: dict) -> None:
        """Append one record ({"type": ..., "step": ..., ...})."""
        if not self.enabled:
            return
        self.records.append(record)
        with self.jsonl.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in flatten(record).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    self.writer.add_scalar(f"{record['type']}/{key}", value, record["step"])
        self._write_csv(record["type"])

    def _write_csv(self, kind: str) -> None:
        rows = [flatten(r) for r in self.records if r.get("type") == kind]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.dir / f"{kind}_log.csv", buffer.getvalue())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
