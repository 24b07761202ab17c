"""Evaluation on the real XQuAD-R dev half (two languages) with a tiny model: the plumbing, not the scores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers_models import make_tiny_model_dir
from mixlingual.models.encoder import BiEncoder
from mixlingual.evaluation.evaluate import evaluate_collection
from mixlingual.evaluation.cli import load_benchmark

SHARED = Path(os.environ.get("MIXLINGUAL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
XQUAD_R = SHARED / "xquad-r-dev"


@pytest.fixture
def one_torch_thread():
    """One thread: on a shared, oversubscribed CPU, OpenMP spinning makes 2 threads 40x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.skipif(not XQUAD_R.is_dir(), reason="../shared/data/xquad-r-dev is absent")
def test_xquad_r_two_languages(tmp_path, one_torch_thread):
    collection = load_benchmark("xquad-r", XQUAD_R, candidate="sentence", langs=["de", "en"])
    encoder = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "model"), precision="fp32")
    m = evaluate_collection(encoder, collection, langs=["en", "de"], batch_size=128)
    assert m["counts"]["queries_by_language"] == {"de": 632, "en": 632}  # half of 1190 per language
    # every XQuAD-R question has its answer sentence in both languages
    assert m["counts"]["no_relevant"]["cross"]["total"] == 0
    assert m["counts"]["no_relevant"]["multi"]["total"] == 0
    assert m["rank_distance"]["queries"] == 2 * 632
    for setting in ("mono", "cross", "multi"):
        assert 0 < m["settings"][setting]["map"] < 1
