"""The training log: CSV rows are appended, not rewritten; resume truncates to the resumed step."""

from __future__ import annotations

import csv

from mixlingual.training.log import MetricsLog


def _train(step: int) -> dict:
    return {"type": "train", "step": step, "loss": 1.0 / step, "lr": 1e-5, "kind": "X-X"}


def _eval(step: int) -> dict:
    return {"type": "eval", "step": step, "settings": {"multi": {"map": 0.5 + step / 100}}}


def _rows(path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_log_call_appends_and_leaves_earlier_rows_untouched(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        log.log(_train(step))
    path = tmp_path / "train_log.csv"
    before, inode = path.read_bytes(), path.stat().st_ino
    log.log(_train(4))
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    assert path.stat().st_ino == inode  # the same file grew; it was not replaced by a rewrite
    assert [row["step"] for row in _rows(path)] == ["1", "2", "3", "4"]


def test_a_new_column_widens_the_header_once(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    log.log(_train(1))
    log.log({**_train(2), "refills": 3})
    log.log(_train(3))
    rows = _rows(tmp_path / "train_log.csv")
    assert [row["refills"] for row in rows] == ["", "3", ""]
    assert list(rows[0]) == ["type", "step", "loss", "lr", "kind", "refills"]


def test_resume_truncates_every_log_to_the_resumed_step(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    for step in (1, 2, 3, 4):
        log.log(_train(step))
        if step % 2 == 0:
            log.log(_eval(step))
    log.close()
    resumed = MetricsLog(tmp_path, tensorboard=False, resume_step=2)
    assert [row["step"] for row in _rows(tmp_path / "train_log.csv")] == ["1", "2"]
    assert [row["step"] for row in _rows(tmp_path / "eval_log.csv")] == ["2"]
    resumed.log(_train(3))
    assert [row["step"] for row in _rows(tmp_path / "train_log.csv")] == ["1", "2", "3"]
    steps = [line.split('"step": ')[1].split(",")[0] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == ["1", "2", "2", "3"]


def test_a_fresh_run_starts_empty_logs(tmp_path):
    (tmp_path / "train_log.csv").write_text("type,step\ntrain,99\n")
    (tmp_path / "metrics.jsonl").write_text('{"type": "train", "step": 99}\n')
    log = MetricsLog(tmp_path, tensorboard=False)
    assert not (tmp_path / "train_log.csv").exists() and not (tmp_path / "metrics.jsonl").exists()
    log.log(_train(1))
    assert [row["step"] for row in _rows(tmp_path / "train_log.csv")] == ["1"]
