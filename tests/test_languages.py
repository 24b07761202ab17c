"""The language table: aliases, resource levels, scripts, seen status, grouping."""

import pytest

from mixlingual.data import languages as L
from mixlingual.errors import DataError, MixlingualError


def test_every_dataset_code_style_maps_to_one_canonical_row():
    assert L.canonical("ar") == L.canonical("ara") == L.canonical("arb_Arab") == "arb_Arab"
    assert L.canonical("zh") == L.canonical("zho-CN") == L.canonical("cmn") == "zho_Hans"
    assert L.canonical("zho-TW") == "zho_Hant"
    assert L.canonical("srp-Latn") == "srp_Latn" and L.canonical("srp-Cyrl") == "srp_Cyrl"
    assert L.canonical("EN") == "eng_Latn"
    assert L.canonical("xx-unknown") == "xx-unknown"
    with pytest.raises(MixlingualError, match="unknown language code"):
        L.language("qqq")


def test_table_covers_the_205_sib200_varieties_with_nllb_levels():
    nllb = [row for row in L.table().rows.values() if row.resource_source == "nllb"]
    assert len(nllb) == 205
    assert {row.resource for row in nllb} == {"high", "low"}
    assert L.resource_level("deu_Latn") == "high" and L.resource_level("bem_Latn") == "low"
    assert L.resource_level("not-a-code") == "unknown"


def test_scripts_and_seen_status():
    assert L.script_of("ja") == "Jpan" and L.script_of("foo_Cyrl") == "Cyrl"
    assert L.seen_status("de", L.MLQA_TRAINING) == "trained"
    assert L.seen_status("fra_Latn", L.MLQA_TRAINING) == "pretrained"
    assert L.seen_status("bem_Latn", L.MLQA_TRAINING) == "unseen"
    assert L.seen_status("fr", (), pretraining=["fr"]) == "pretrained"
    with pytest.raises(MixlingualError, match="pretraining set"):
        L.seen_status("fr", (), pretraining="gpt")


def test_group_languages_by_each_key():
    codes = ["deu_Latn", "bem_Latn", "rus_Cyrl", "ar"]
    assert L.group_languages(codes, "resource") == {"high": ["ar", "deu_Latn", "rus_Cyrl"], "low": ["bem_Latn"]}
    assert L.group_languages(codes, "script") == {"Arab": ["ar"], "Cyrl": ["rus_Cyrl"], "Latn": ["bem_Latn", "deu_Latn"]}
    assert L.group_languages(codes, "seen", trained=["ar"]) == {
        "pretrained": ["deu_Latn", "rus_Cyrl"], "trained": ["ar"], "unseen": ["bem_Latn"]}
    with pytest.raises(MixlingualError):
        L.group_languages(codes, "family")


def test_bad_table_rows_name_the_line(tmp_path):
    path = tmp_path / "langs.tsv"
    path.write_text("# c\ncode\tiso639_3\tscript\tname\tresource\tresource_source\taliases\n"
                    "eng_Latn\teng\tLatn\tEnglish\thigh\tnllb\ten\nfoo_Latn\tfoo\tLatn\tFoo\tmedium\tx\t\n")
    with pytest.raises(DataError, match=r"langs.tsv:4: field 'resource'"):
        L.read_table(path)
