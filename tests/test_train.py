"""The training loop end to end on a tiny model: outputs, evaluation, early stopping, early errors."""

from __future__ import annotations

import json
import random

import pytest
import torch
from helpers_models import TINY_WORDS
from helpers_train import tiny_run_overrides

from mixlingual.cli import main
from mixlingual.config import load_config
from mixlingual.data.jsonl import read_parallel, write_collection
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError
from mixlingual.train import train


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
    if summary["best_step"]:  # best model exported from the best checkpoint
        assert (run / "best-model" / "model.safetensors").is_file()
    # frozen word embeddings did not move
    from safetensors.torch import load_file
    before = load_file(str(tmp_path / "tiny-model" / "model.safetensors"))
    after = load_file(str(run / "model" / "model.safetensors"))
    key = next(k for k in before if "word_embeddings" in k)
    assert torch.equal(before[key], after[key.replace("bert.", "")] if key not in after else after[key])


def test_early_stopping_after_patience(tmp_path):
    overrides = tiny_run_overrides(tmp_path, steps=40) + [
        "eval.data.name=jsonl", f"eval.data.path={write_eval(tmp_path / 'eval.jsonl')}", "eval.every_steps=1",
        "eval.patience=2", "eval.metric=rank_distance.mean", "eval.mode=max", "optim.lr=1e-6"]
    # a metric that barely moves at a tiny lr: it stops after 2 evaluations without improvement
    summary = train(load_config(None, overrides))
    assert summary["stopped_early"] and summary["steps"] < 40


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
    from mixlingual.tasks import make_task

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
