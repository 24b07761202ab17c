"""Image-caption data: canonical JSONL validation, benchmark loaders on tiny fixtures, synthetic set."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from mixlingual.errors import DataError
from mixlingual.imagetext.captions import LANGUAGES, Group, describe
from mixlingual.imagetext.data import (ImageStore, read_image_captions, to_parallel_items,
                                       write_image_captions)
from mixlingual.imagetext.formats import load_image_captions
from mixlingual.imagetext.synthetic import generate_scenes, write_synthetic


def _images(folder, names, size=8):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((size, size, 3), 10 * i, dtype=np.uint8)).save(folder / name)
    return folder


# ------------------------------------------------------------------------- canonical JSONL
def test_jsonl_round_trip_and_relative_paths(tmp_path):
    _images(tmp_path / "img", ["a.png", "b.png"])
    lines = [{"id": "a", "image": "img/a.png", "captions": {"en": ["a dog"], "de": "ein Hund"}},
             {"id": "b", "image": "img/b.png", "captions": {"en": ["a cat", "one cat"]}, "split": "test"}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    items = read_image_captions(tmp_path / "c.jsonl")
    assert [it.id for it in items] == ["a", "b"]
    assert items[0].captions == {"en": ["a dog"], "de": ["ein Hund"]}
    assert items[1].meta == {"split": "test"}
    write_image_captions(items, tmp_path / "out" / "copy.jsonl")
    again = read_image_captions(tmp_path / "out" / "copy.jsonl")
    assert [(x.id, x.image, x.captions) for x in again] == [(x.id, x.image, x.captions) for x in items]


@pytest.mark.parametrize("record, field", [
    ({"image": "x.png", "captions": {"en": ["c"]}}, "id"),
    ({"id": "x", "image": "x.png", "captions": {}}, "captions"),
    ({"id": "x", "image": "x.png", "captions": {"en": [""]}}, "captions.en"),
    ({"id": "x", "image": 3, "captions": {"en": ["c"]}}, "image"),
])
def test_jsonl_errors_name_file_line_and_field(tmp_path, record, field):
    good = {"id": "ok", "image": "ok.png", "captions": {"en": ["fine"]}}
    (tmp_path / "c.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError) as err:
        read_image_captions(tmp_path / "c.jsonl", check_images=False)
    assert f"c.jsonl:2: field '{field}'" in str(err.value)


def test_missing_images_are_listed_with_count(tmp_path):
    _images(tmp_path, ["present.png"])
    rows = [{"id": f"i{k}", "image": f"gone{k}.png", "captions": {"en": ["c"]}} for k in range(7)]
    rows.append({"id": "p", "image": "present.png", "captions": {"en": ["c"]}})
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match=r"7 of 8 image files are missing: .*gone0.png.* and 2 more"):
        read_image_captions(tmp_path / "c.jsonl")


def test_duplicate_ids_are_rejected(tmp_path):
    row = json.dumps({"id": "a", "image": "a.png", "captions": {"en": ["c"]}})
    (tmp_path / "c.jsonl").write_text(row + "\n" + row + "\n")
    with pytest.raises(DataError, match="c.jsonl:2: .*duplicate id 'a' \\(first on line 1\\)"):
        read_image_captions(tmp_path / "c.jsonl", check_images=False)


# ------------------------------------------------------------------------- benchmark layouts
def test_multi30k_task1_layout_with_gzip(tmp_path):
    task1 = tmp_path / "data" / "task1"
    (task1 / "image_splits").mkdir(parents=True)
    (task1 / "raw").mkdir()
    (task1 / "image_splits" / "test_2016_flickr.txt").write_text("100.jpg\n200.jpg\n")
    (task1 / "raw" / "test_2016_flickr.en").write_text("A dog runs.\nTwo men talk.\n")
    with gzip.open(task1 / "raw" / "test_2016_flickr.de.gz", "wt", encoding="utf-8") as handle:
        handle.write("Ein Hund rennt.\nZwei Männer reden.\n")
    images = _images(tmp_path / "flickr", ["100.jpg", "200.jpg"])
    items = load_image_captions("multi30k", tmp_path, images=images)
    by_id = {it.id: it for it in items}
    assert by_id["200"].captions == {"de": ["Zwei Männer reden."], "en": ["Two men talk."]}
    assert by_id["100"].image.endswith("flickr/100.jpg")
    (task1 / "raw" / "test_2016_flickr.en").write_text("only one line\n")
    with pytest.raises(DataError, match="1 captions but 2 images"):
        load_image_captions("multi30k", task1, images=images)


def test_xflickrco_iglue_layout(tmp_path):
    ann = tmp_path / "annotations"
    for lang, text in (("de", "Ein Mann."), ("ja", "男性。")):
        (ann / lang).mkdir(parents=True)
        (ann / lang / "test.jsonl").write_text(
            json.dumps({"sentences": [text], "id": "1007129816", "img_path": "1007129816.jpg"},
                       ensure_ascii=False) + "\n")
    images = _images(tmp_path / "img", ["1007129816.jpg"])
    (item,) = load_image_captions("xflickrco", ann, images=images)
    assert item.id == "1007129816" and item.captions == {"de": ["Ein Mann."], "ja": ["男性。"]}
    assert load_image_captions("xflickrco", ann, images=images, langs=["ja"])[0].languages == ["ja"]


def test_xtd10_layout_maps_jp_to_ja_and_reports_missing_images(tmp_path):
    (tmp_path / "test_image_names.txt").write_text("COCO_1.jpg\nCOCO_2.jpg\n")
    (tmp_path / "test_1kcaptions_en.txt").write_text("a plate of food\na bus on a road\n")
    (tmp_path / "test_1kcaptions_jp.txt").write_text("料理の皿\n道路のバス\n")
    images = _images(tmp_path / "img", ["COCO_1.jpg", "COCO_2.jpg"])
    items = load_image_captions("xtd10", tmp_path, images=images)
    assert {it.id: it.captions["ja"][0] for it in items} == {"COCO_1": "料理の皿", "COCO_2": "道路のバス"}
    (images / "COCO_2.jpg").unlink()
    with pytest.raises(DataError, match="1 of 2 image files are missing: .*COCO_2.jpg"):
        load_image_captions("xtd10", tmp_path, images=images)


def test_xm3600_captions_jsonl(tmp_path):
    line = {"image/key": "000411001ff7dd4f",
            "en": {"caption": ["a red car", "a parked car"], "caption/tokenized": ["a red car", "x"]},
            "ar": {"caption": ["سيارة حمراء"]}}
    (tmp_path / "captions.jsonl").write_text(json.dumps(line, ensure_ascii=False) + "\n")
    images = _images(tmp_path / "images", ["000411001ff7dd4f.jpg"])
    (item,) = load_image_captions("xm3600", tmp_path, images=images)
    assert item.captions == {"en": ["a red car", "a parked car"], "ar": ["سيارة حمراء"]}
    with pytest.raises(DataError, match="needs the image folder"):
        load_image_captions("xm3600", tmp_path)


# ------------------------------------------------------------------------- synthetic + adapters
def test_synthetic_is_deterministic_and_multilingual(tmp_path):
    a = generate_scenes(20, seed=7, size=32)
    b = generate_scenes(20, seed=7, size=32)
    assert all(np.array_equal(x.image, y.image) and x.captions == y.captions for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, generate_scenes(1, seed=8, size=32)[0].image)
    assert set(a[0].captions) == set(LANGUAGES) and len(a[0].captions["zh"]) == 4
    # captions name the scene's attributes; the image has the group's colour in its quadrant
    g = a[0].groups[0]
    assert g.colour in a[0].captions["en"][0].lower() and g.shape in a[0].captions["en"][0].lower()
    path = write_synthetic(a[:3], tmp_path / "syn")
    items = read_image_captions(path)
    assert len(items) == 3 and np.array_equal(ImageStore(32).load(items[0]), a[0].image)


def test_caption_grammar_agreement():
    scene = (Group(2, "star", "red", "top-left"), Group(1, "triangle", "blue", "bottom-right"))
    assert describe(scene, "de") == "Zwei rote Sterne oben links und ein blaues Dreieck unten rechts"
    assert describe(scene, "es").startswith("Dos estrellas rojas arriba a la izquierda y un triángulo azul")
    assert describe(scene, "ru").startswith("Две красные звезды вверху слева и один синий треугольник")
    assert describe(scene, "zh", 1).startswith("右下方有一个蓝色的三角形")
    assert "दो लाल तारे" in describe(scene, "hi")


def test_parallel_items_use_image_id_as_group():
    items = to_parallel_items(load_image_captions("synthetic", None, n=3, size=32, langs=["en", "ru"]))
    assert [p.group for p in items] == [p.id for p in items]
    assert items[0].mono_languages == ["en", "ru"]
    assert items[0].meta["image_item"].pixels.shape == (32, 32, 3)


def test_synthetic_exclude_gives_a_held_out_set():
    train = load_image_captions("synthetic", None, n=400, seed=0, size=16)
    held = load_image_captions("synthetic", None, n=400, seed=1, size=32, exclude={"n": 400, "seed": 0})
    full = load_image_captions("synthetic", None, n=400, seed=1, size=32)
    seen = {c for it in train for caps in it.captions.values() for c in caps}
    assert any(c in seen for it in full for c in it.captions["en"])  # duplicates do occur...
    assert not any(c in seen for it in held for caps in it.captions.values() for c in caps)  # ...and are dropped
    assert held[0].meta["excluded_duplicates"] == len(full) - len(held) > 0


def test_jsonl_language_filter(tmp_path):
    rows = [{"id": "a", "image": "a.png", "captions": {"en": ["x"], "de": ["y"]}},
            {"id": "b", "image": "b.png", "captions": {"de": ["z"]}}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    items = load_image_captions("jsonl", tmp_path / "c.jsonl", langs=["en"], check_images=False)
    assert [(it.id, it.captions) for it in items] == [("a", {"en": ["x"]})]
    with pytest.raises(DataError, match="no captions in languages"):
        load_image_captions("jsonl", tmp_path / "c.jsonl", langs=["fr"], check_images=False)


def test_bad_json_line_names_file_and_line(tmp_path):
    good = {"id": "a", "image": "a.png", "captions": {"en": ["a red circle"]}}
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(good) + "\n\n{not json\n")
    with pytest.raises(DataError, match=r"c\.jsonl:3"):
        read_image_captions(path, check_images=False)
