"""SIB-200 loader: fixtures for behaviour and errors, the shared copy for real counts."""

import pytest

from bitext_fixtures import SENTENCES, make_sib_dir, shared_data_dir
from mixlingual.data import registry, sib200
from mixlingual.errors import ConfigError, DataError


def test_collection_groups_translations_by_index_id(tmp_path):
    root = make_sib_dir(tmp_path)
    col = registry.load_collection("sib200-bitext", root, split="dev")
    assert col.languages == ["deu_Latn", "eng_Latn", "fra_Latn", "zul_Latn"]
    assert len(col.queries) == len(col.candidates) == 12
    relevant = col.relevant_by_group()
    assert sorted(col.candidates[i].lang for i in relevant["12"]) == col.languages
    fra_31 = next(q for q in col.queries if q.id == "fra_Latn:31")
    assert fra_31.text == SENTENCES["31"][1]["fra_Latn"]  # quotes kept verbatim (no CSV quoting)
    assert col.meta["topics"] == {"7": "travel", "12": "sports", "31": "health"}


def test_langs_max_sentences_and_parallel_items(tmp_path):
    root = make_sib_dir(tmp_path, splits=("train", "dev"))
    col = sib200.load_collection(root / "data" / "annotated", langs="eng_Latn,zul_Latn", max_sentences=2)
    assert [q.id for q in col.queries] == ["eng_Latn:7", "eng_Latn:12", "zul_Latn:7", "zul_Latn:12"]
    both = sib200.load_collection(root, split="train+dev", langs=["eng_Latn"])
    assert len(both.queries) == 3  # the same ids in both splits are merged, not duplicated
    items = registry.load_parallel("sib200-bitext", root, split="train")
    assert len(items) == 3 and items[0].queries["deu_Latn"] == items[0].positives["deu_Latn"]
    assert items[1].meta["topic"] == "sports"


def test_errors_name_file_line_and_option(tmp_path):
    root = make_sib_dir(tmp_path)
    with pytest.raises(ConfigError, match="langs"):
        sib200.load_collection(root, langs=["xxx_Latn"])
    with pytest.raises(ConfigError, match="split"):
        sib200.load_collection(root, split="validation")
    bad = root / "data" / "annotated" / "fra_Latn" / "dev.tsv"
    bad.write_text("index_id\tcategory\ttext\n7\ttravel\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"fra_Latn/dev.tsv:2"):
        sib200.load_collection(root)
    bad.write_text("index_id\tcategory\ttext\n7\ttravel\tx\n12\tsports\ty\n99\thealth\tz\n", encoding="utf-8")
    with pytest.raises(DataError, match="differ"):
        sib200.load_collection(root)
    with pytest.raises(DataError, match="not a SIB-200 folder"):
        sib200.load_collection(tmp_path / "nowhere")


@pytest.mark.shared_data
def test_shared_sib200_is_205_way_parallel():
    root = shared_data_dir() / "sib200"
    if not root.is_dir():
        pytest.skip(f"shared data absent: {root}")
    col = sib200.load_collection(root, split="dev")
    counts = col.counts()
    assert len(counts) == 205 and {c["queries"] for c in counts.values()} == {99}
    assert len(sib200.read_topic_split(root, "eng_Latn", "train")) == 701
