"""Image-text evaluation on a hand-built embedding model whose right answers are known."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mixlingual.imagetext.data import ImageCaptionItem
from mixlingual.imagetext.evaluate import evaluate_image_text

N = 6  # images


class KnownModel:
    """Image i -> e_i. English caption of i -> e_i. German caption of i -> 0.6 e_i + 0.8 e_{N+i}
    (right image, lower score), Spanish caption of i -> e_{(i+1) % N} (wrong image)."""

    config = SimpleNamespace(image_tower=SimpleNamespace(image_size=4))

    def encode_images(self, images, batch_size=256):
        return np.eye(2 * N, dtype=np.float32)[images[:, 0, 0, 0].astype(int)]

    def encode_texts(self, texts, batch_size=256):
        out = np.zeros((len(texts), 2 * N), np.float32)
        for row, text in enumerate(texts):
            lang, i = text.split(":")
            i = int(i)
            if lang == "en":
                out[row, i] = 1.0
            elif lang == "de":
                out[row, i], out[row, N + i] = 0.6, 0.8
            else:
                out[row, (i + 1) % N] = 1.0
        return out


@pytest.fixture
def items():
    return [ImageCaptionItem(id=f"img{i}", image=None, pixels=np.full((4, 4, 3), i, np.uint8),
                             captions={lang: [f"{lang}:{i}"] for lang in ("en", "de", "es")}) for i in range(N)]


def test_per_language_recall_rank_distance_and_clipscore(items, tmp_path):
    m = evaluate_image_text(KnownModel(), items, out_dir=tmp_path)
    t2i = m["per_language"]["t2i"]
    assert t2i["en"]["r@1"] == 1.0 and t2i["de"]["r@1"] == 1.0 and t2i["es"]["r@1"] == 0.0
    assert m["settings"]["t2i"]["r@1"] == pytest.approx(2 / 3)
    assert m["per_language"]["i2t"]["es"]["r@5"] == 0.0  # the relevant caption ties at 0: last
    # pool of 3N captions: for image i, en_i scores 1 (rank 1), es_{i-1} 1 too but is not relevant,
    # so pessimistic ties put en_i at rank 2; de_i (0.6) at rank 3; es_i ties at 0 with the rest: rank 3N
    assert m["best_rank"] == {"de": 3.0, "en": 2.0, "es": 3.0 * N}
    assert m["rank_distance"]["mean"] == 3.0 * N - 2.0
    assert m["settings"]["i2t_multi"]["r@1"] == 0.0 and m["settings"]["i2t_multi"]["r@5"] == 1.0
    assert m["clipscore"]["per_language"] == pytest.approx({"en": 2.5, "de": 1.5, "es": 0.0})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert "per_query" not in saved and saved["rank_distance"]["mean"] == 3.0 * N - 2.0
    rows = [json.loads(line) for line in (tmp_path / "per_query.jsonl").read_text().splitlines()]
    assert sum(r["setting"] == "t2i" for r in rows) == 3 * N
    assert "| es | 0.000 |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "per_language_r1.png").stat().st_size > 0


def test_languages_and_missing_captions(items):
    items[0].captions.pop("es")
    m = evaluate_image_text(KnownModel(), items, langs=["en", "es"])
    assert m["languages"] == ["en", "es"]
    assert len(m["per_query"]["t2i"]["es"]["r@1"]) == N - 1
    # image 0 has captions in one language only: its rank distance is undefined, not 0
    assert np.isnan(m["per_query"]["rank_distance"]["values"][0])
