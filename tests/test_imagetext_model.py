"""Image-text dual encoder on a tiny text tower and a tiny conv tower: shapes, losses, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.models.encoder import BiEncoder
from mixlingual.errors import ConfigError, ModelError
from mixlingual.imagetext.model import CONFIG_FILE, ImageTextConfig, ImageTextModel
from mixlingual.imagetext.objective import (MomentumConfig, MomentumDistillation, caption_alignment_loss,
                                            itc_loss)
from mixlingual.imagetext.synthetic import generate_scenes
from mixlingual.imagetext.towers import TowerSpec, to_pixels

TINY_TOWER = TowerSpec(name="conv", image_size=32, widths=[8, 16])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "text")


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(8, seed=3, size=32, languages=("en", "de"))


def _model(tiny_dir, freeze: bool = True, **kw) -> ImageTextModel:
    torch.manual_seed(0)
    config = ImageTextConfig(text_model=tiny_dir, freeze_text=freeze, image_tower=TINY_TOWER,
                             embed_dim=16, **kw)
    return ImageTextModel.build(config)


def _pixels(scenes):
    return to_pixels(np.stack([s.image for s in scenes]), TINY_TOWER)


def test_embeddings_are_normalized_and_losses_backpropagate(tiny_dir, scenes):
    model = _model(tiny_dir, freeze=False)
    img = model.embed_images(_pixels(scenes))
    txt = model.embed_texts([s.captions["en"][0] for s in scenes])
    assert img.shape == txt.shape == (8, 16)
    assert torch.allclose(img.norm(dim=-1), torch.ones(8), atol=1e-5)
    loss = itc_loss(model, img, txt) + caption_alignment_loss(
        model, txt, model.embed_texts([s.captions["de"][0] for s in scenes]))
    loss.backward()
    # every trainable part got a gradient: image tower, both heads, the temperature, the text tower
    for name in ("image_tower.body.0.weight", "image_proj.weight", "itc.log_scale",
                 "text_tower.model.embeddings.word_embeddings.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_frozen_text_tower_gets_no_gradient_and_caches_features(tiny_dir, scenes):
    model = _model(tiny_dir, freeze=True)
    captions = [s.captions["en"][0] for s in scenes]
    assert model.precompute_text_features(captions) == len(set(captions))
    loss = itc_loss(model, model.embed_images(_pixels(scenes)), model.embed_texts(captions))
    loss.backward()
    assert all(p.grad is None for p in model.text_tower.parameters())
    assert model.text_proj[0].weight.grad is not None
    assert model.precompute_text_features(captions) == 0  # all cached now


def test_itc_is_lower_for_matching_than_for_shuffled_pairs(tiny_dir, scenes):
    model = _model(tiny_dir)
    img = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    assert itc_loss(model, img, img) < itc_loss(model, img, img.roll(1, dims=0))


def test_save_load_round_trip_gives_identical_embeddings(tiny_dir, scenes, tmp_path):
    model = _model(tiny_dir, freeze=False)
    with torch.no_grad():
        model.itc.log_scale.fill_(3.0)
    images = np.stack([s.image for s in scenes])
    captions = [s.captions["de"][1] for s in scenes]
    before_img, before_txt = model.encode_images(images), model.encode_texts(captions)
    model.save(str(tmp_path / "it"))
    meta = json.loads((tmp_path / "it" / CONFIG_FILE).read_text())
    assert meta["text_tower_saved"] and (tmp_path / "it" / "text_tower" / "modules.json").is_file()
    loaded = ImageTextModel.load(str(tmp_path / "it"))
    np.testing.assert_allclose(loaded.encode_images(images), before_img, atol=1e-5)
    np.testing.assert_allclose(loaded.encode_texts(captions), before_txt, atol=1e-5)
    assert float(loaded.itc.log_scale.detach()) == pytest.approx(3.0)
    # the text tower alone is a BiEncoder folder
    assert BiEncoder.from_pretrained(str(tmp_path / "it" / "text_tower")).dim == model.text_tower.dim


def test_frozen_text_tower_is_saved_by_reference(tiny_dir, tmp_path):
    _model(tiny_dir, freeze=True).save(str(tmp_path / "it"))
    assert not (tmp_path / "it" / "text_tower").exists()
    assert ImageTextModel.load(str(tmp_path / "it")).config.text_model == tiny_dir


def test_load_rejects_other_folders(tmp_path, tiny_dir):
    with pytest.raises(ModelError, match="not an image-text model"):
        ImageTextModel.load(tiny_dir)


def test_bad_config_names_the_key(tiny_dir):
    with pytest.raises(ConfigError, match="text_head"):
        _model(tiny_dir, text_head="transformer")


def test_momentum_distillation_queues_and_soft_targets(tiny_dir, scenes):
    model = _model(tiny_dir, freeze=True)
    distill = MomentumDistillation(model, MomentumConfig(enabled=True, queue_size=12, alpha=0.4), 16)
    pixels, captions = _pixels(scenes), [s.captions["en"][0] for s in scenes]
    ids = torch.arange(8)
    for step in range(2):
        loss = distill(model, model.embed_images(pixels), model.embed_texts(captions), pixels, captions, ids)
        loss.backward()
        assert torch.isfinite(loss)
    # 16 features went into a 12-slot ring: full, pointer wrapped to 4; slots 0-3 hold the
    # second batch's items 4-7 (slots 8-11 its items 0-3), overwriting the first batch's
    assert int(distill.pointer) == 4 and (distill.id_queue >= 0).all()
    assert distill.id_queue.tolist() == [4, 5, 6, 7, 4, 5, 6, 7, 0, 1, 2, 3]
    # the momentum copy moved towards the online model but is not equal to it
    online, ema = model.image_proj.weight, distill.image_proj.weight
    assert not torch.equal(online, ema)


def _tiny_hf_vision(folder, kind: str) -> str:
    """A randomly initialized tiny CLIP vision tower / ViT saved like a hub checkpoint."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTModel

    common = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=8)
    torch.manual_seed(0)
    model = CLIPVisionModel(CLIPVisionConfig(**common)) if kind == "clip" else ViTModel(ViTConfig(**common))
    model.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("kind", ["clip", "vit"])
def test_hugging_face_image_tower_round_trip(tiny_dir, scenes, tmp_path, kind):
    from mixlingual.imagetext.towers import hf_spec

    spec = hf_spec(_tiny_hf_vision(tmp_path / kind, kind), image_size=32)
    config = ImageTextConfig(text_model=tiny_dir, image_tower=spec, embed_dim=16)
    model = ImageTextModel.build(config)
    images = np.stack([s.image for s in scenes])
    before = model.encode_images(images)
    assert before.shape == (8, 16) and model.image_tower.dim == 16
    model.save(str(tmp_path / "it"))
    assert (tmp_path / "it" / "image_tower" / "config.json").is_file()
    np.testing.assert_allclose(ImageTextModel.load(str(tmp_path / "it")).encode_images(images), before, atol=1e-5)
