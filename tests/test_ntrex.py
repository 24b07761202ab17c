"""NTREX-128 loader on a fixture folder and (when present) the shared copy."""

import pytest

from bitext_fixtures import make_ntrex_dir, shared_data_dir
from mixlingual.data import ntrex, registry
from mixlingual.errors import ConfigError, DataError


def test_line_aligned_collection_and_reported_exclusions(tmp_path):
    root = make_ntrex_dir(tmp_path / "ntrex")
    col = registry.load_collection("ntrex-bitext", root)
    assert col.languages == ["deu", "eng", "fra"]
    assert set(col.meta["excluded"]) == {"eng-GB", "gsw-ZH"}
    assert [c.groups for c in col.candidates if c.lang == "fra"] == [("1",), ("2",), ("3",)]
    assert col.meta["documents"] == ["doc1", "doc1", "doc2"]
    more = ntrex.load_collection(root, include_english_refs=True, include_additional=True, max_sentences=2)
    assert more.languages == ["deu", "eng", "eng-GB", "fra", "gsw-ZH"] and len(more.queries) == 10


def test_empty_lines_are_counted_and_misalignment_fails(tmp_path):
    root = make_ntrex_dir(tmp_path / "ntrex")
    (root / "NTREX-128" / "newstest2019-ref.deu.txt").write_text("eins\n\ndrei\n", encoding="utf-8")
    col = ntrex.load_collection(root, langs="eng,deu")
    assert col.meta["empty_lines"] == {"deu": 1} and len(col.queries) == 5
    (root / "NTREX-128" / "newstest2019-ref.deu.txt").write_text("eins\nzwei\n", encoding="utf-8")
    with pytest.raises(DataError, match="ref.deu.txt: has 2 lines"):
        ntrex.load_collection(root)
    with pytest.raises(ConfigError, match="langs"):
        ntrex.load_collection(root, langs=["klingon"])
    with pytest.raises(ConfigError, match="single split"):
        ntrex.load_collection(root, split="dev")


@pytest.mark.shared_data
def test_shared_ntrex_has_1997_lines_in_126_languages():
    root = shared_data_dir() / "ntrex128"
    if not root.is_dir():
        pytest.skip(f"shared data absent: {root}")
    col = ntrex.load_collection(root, max_sentences=5)
    assert len(col.languages) == 126 and len(col.queries) == 126 * 5
    assert len(ntrex.read_lines(root / "NTREX-128" / ntrex.SOURCE_FILE)) == 1997
