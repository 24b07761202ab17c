"""The training loop end to end on a tiny model: outputs, evaluation, early stopping, early errors."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import torch
from helpers_models import TINY_WORDS
from helpers_train import tiny_run_overrides
from safetensors.torch import load_file

import mixlingual.training.loop
from mixlingual.cli import main
from mixlingual.training.config import load_config
from mixlingual.data.jsonl import read_parallel, write_collection
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError
from mixlingual.training.loop import train


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def write_eval(path, leak_from=None):
    rnd = random.Random(1)
    text = lambda n: " ".join(rnd.choice(TINY_WORDS) for _ in range(n))  # noqa: E731
    queries, candidates = [], []
    for g in range(8):
        for lang in ("de", "en", "es"):
            queries.append(Query(f"q{g}{lang}", lang, text(5), f"g{g}"))
            candidates.append(Candidate(f"c{g}{lang}", lang, text(10), (f"g{g}",)))
    if leak_from is not None:
        queries[0].text = read_parallel(leak_from)[0].queries["de"]
    write_collection(Collection("tiny-eval", queries, candidates), path)
    return path


def test_run_writes_every_output_and_evaluates(tmp_path):
    overrides = tiny_run_overrides(tmp_path, steps=6) + [
        "eval.data.name=jsonl", f"eval.data.path={write_eval(tmp_path / 'eval.jsonl')}", "eval.every_steps=3",
        "eval.at_start=true", "model.freeze_word_embeddings=true", "train.precision=bf16"]
    summary = train(load_config(None, overrides))
    run = tmp_path / "run"
    assert summary["steps"] == 6 and summary["best_step"] in (0, 3, 6)
    for name in ("config.yaml", "metrics.jsonl", "train_log.csv", "eval_log.csv", "batch_counts.json",
                 "summary.json", "model/modules.json", "model/model.safetensors"):
        assert (run / name).is_file(), name
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["type"] == "eval"]
    assert [r["step"] for r in evals] == [0, 3, 6]
    assert set(evals[0]["per_language"]["mono"]["de"]) == {"map", "mrr@10"}
    assert 0 <= evals[-1]["settings"]["multi"]["map"] <= 1
    counts = json.loads((run / "batch_counts.json").read_text())
    assert sum(counts["kinds"].values()) == 6 and set(counts["kinds"]) <= {"X-X", "X-Y"}
    header = (run / "eval_log.csv").read_text().splitlines()[0]
    assert "settings.multi.map" in header and "per_language.cross.es.mrr@10" in header
    assert (run / "best-model" / "model.safetensors").is_file()  # whichever step was best, step 0 included
    # frozen word embeddings did not move
    before = load_file(str(tmp_path / "tiny-model" / "model.safetensors"))
    after = load_file(str(run / "model" / "model.safetensors"))
    key = next(k for k in before if "word_embeddings" in k)
    assert torch.equal(before[key], after[key.replace("bert.", "")] if key not in after else after[key])


def scripted_evaluations(monkeypatch, values: list[float]) -> list[float]:
    """Make the task's evaluate() return values[i] as settings.multi.map on its i-th call.

    A real evaluation of a tiny model moves too little to tell better from worse, so a test of
    best-model selection and early stopping needs values it chose. Returns the values served.
    """
    served: list[float] = []
    real_make_task = mixlingual.training.loop.make_task

    def make_task(config):
        task = real_make_task(config)

        def evaluate():
            served.append(values[len(served)])
            return {"settings": {"multi": {"map": served[-1]}}}

        task.evaluate = evaluate
        return task

    monkeypatch.setattr(mixlingual.training.loop, "make_task", make_task)
    return served


@pytest.mark.parametrize("mode", ["max", "min"])
def test_early_stopping_after_patience(tmp_path, monkeypatch, mode):
    # steps 1..: better, better, best (step 3), a tie (not an improvement), worse -> patience 2 is
    # used up at step 5; a reversed comparison keeps step 1, and `>=` takes the tie at step 4
    values = [0.1, 0.3, 0.5, 0.5, 0.45, 0.9, 0.9, 0.9]
    if mode == "min":
        values = [1 - v for v in values]
    served = scripted_evaluations(monkeypatch, values)
    overrides = tiny_run_overrides(tmp_path, steps=8) + [
        "eval.every_steps=1", "eval.patience=2", "eval.metric=settings.multi.map", f"eval.mode={mode}"]
    summary = train(load_config(None, overrides))
    assert summary["stopped_early"] and summary["steps"] == 5 and len(served) == 5
    assert summary["best_step"] == 3 and summary["best_metric"] == values[2]
    assert (tmp_path / "run" / "best-model" / "model.safetensors").is_file()


def test_a_best_evaluation_at_step_0_exports_the_untrained_model(tmp_path, monkeypatch):
    served = scripted_evaluations(monkeypatch, [0.9, 0.2, 0.3, 0.25])
    overrides = tiny_run_overrides(tmp_path, steps=4) + ["eval.at_start=true", "eval.every_steps=2",
                                                         "eval.metric=settings.multi.map"]
    summary = train(load_config(None, overrides))
    run = tmp_path / "run"
    assert summary["best_step"] == 0 and served == [0.9, 0.2, 0.3]
    untrained = load_file(str(tmp_path / "tiny-model" / "model.safetensors"))
    best = load_file(str(run / "best-model" / "model.safetensors"))
    final = load_file(str(run / "model" / "model.safetensors"))
    assert best.keys() == untrained.keys() and all(torch.equal(best[k], untrained[k]) for k in best)
    assert not all(torch.equal(final[k], untrained[k]) for k in final)  # training did move the weights
    # killed right after the step-0 checkpoint: resuming neither evaluates step 0 again (that would
    # count as an evaluation without improvement) nor loses its log record
    for later in ("step-00000002", "step-00000004"):
        shutil.rmtree(run / "checkpoints" / later)
    served = scripted_evaluations(monkeypatch, [0.2, 0.3, 0.25])
    resumed = train(load_config(None, overrides), resume=True)
    assert served == [0.2, 0.3] and resumed["best_step"] == 0  # steps 2 and 4 only
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "eval"] == [0, 2, 4]


def test_zero_steps_save_the_starting_model_unchanged(tmp_path):
    """train.max_steps 0: no optimizer step, the starting model saved as the run's model (a sweep's
    zero-shot baseline goes through the same cells, evaluations and debiasing as the trained ones)."""
    summary = train(load_config(None, tiny_run_overrides(tmp_path, steps=0)))
    assert summary["steps"] == 0
    untrained = load_file(str(tmp_path / "tiny-model" / "model.safetensors"))
    final = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert final.keys() == untrained.keys() and all(torch.equal(final[k], untrained[k]) for k in final)
    with pytest.raises(ConfigError, match="train.max_steps: must be >= 0, got -1"):
        load_config(None, tiny_run_overrides(tmp_path, steps=-1))


def test_errors_come_before_any_model_work(tmp_path, capsys):
    base = tiny_run_overrides(tmp_path, steps=2)
    with pytest.raises(ConfigError, match="train.batch_size: 64 x 1 rank"):
        train(load_config(None, base + ["train.batch_size=64", "model.name=/nonexistent"]))
    with pytest.raises(ConfigError, match="data.languages: no training data in 'fi'"):
        train(load_config(None, base + ["data.languages=[de, fi]", "model.name=/nonexistent"]))
    leaky = write_eval(tmp_path / "leak.jsonl", leak_from=tmp_path / "train.jsonl")
    with pytest.raises(ConfigError, match="output.overlap=refuse"):
        train(load_config(None, base + ["eval.data.name=jsonl", f"eval.data.path={leaky}",
                                        "output.overlap=refuse", "model.name=/nonexistent"]))
    # the CLI prints one line naming the key and exits 2
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("sampling:\n  alpah: 0.2\n")
    assert main(["train", str(config)]) == 2
    assert "did you mean 'sampling.alpha'" in capsys.readouterr().err


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    overrides = tiny_run_overrides(tmp_path, steps=2)
    train(load_config(None, overrides))
    with pytest.raises(ConfigError, match="--resume"):
        train(load_config(None, overrides))
    again = train(load_config(None, overrides[:-1] + [f"output.dir={tmp_path / 'run'}", "train.max_steps=3"]),
                  resume=True)
    assert again["steps"] == 3


def test_length_buckets_give_the_same_embeddings_and_gradients(tmp_path):
    from mixlingual.training.tasks import make_task

    texts = ["the cat", "the big old house of the city on the river", "a dog", "one two three four five six",
             "paris", "the sun and the moon and the night"]
    grads = []
    for buckets in (1, 3):
        task = make_task(load_config(None, tiny_run_overrides(tmp_path) + [f"model.length_buckets={buckets}"]))
        task.build_model(torch.device("cpu")).eval()
        emb = task._embed(texts, "passage")
        weights = torch.randn(emb.shape, generator=torch.Generator().manual_seed(0))
        (emb * weights).sum().backward()  # a different weight per row: a wrong order changes the gradient
        grads.append((emb.detach(), next(task.encoder.parameters()).grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-6)
    assert grads[0][1].abs().sum() > 0
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)
