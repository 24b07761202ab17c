"""Query perturbations: script safety, rates, determinism, per-kind behaviour, robustness report."""

import unicodedata

import numpy as np
import pytest

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError
from mixlingual.experiments.robustness.perturb import (
    PERTURBATIONS, parse_perturb_spec, perturb_collection, perturb_text)
from mixlingual.experiments.robustness.run import robustness_report
from mixlingual.experiments.robustness.alphabets import COMMON, char_script, text_scripts

QUERIES = {
    "en": "When did the Normans conquer England and who led them?",
    "de": "Wann eroberten die Normannen England und wer führte sie an?",
    "vi": "Người Norman chinh phục nước Anh vào năm nào và ai dẫn đầu họ?",
    "ru": "Когда норманны завоевали Англию и кто их возглавлял?",
    "el": "Πότε κατέκτησαν οι Νορμανδοί την Αγγλία και ποιος τους οδήγησε;",
    "ar": "متى غزا النورمانديون إنجلترا ومن قادهم؟",
    "hi": "नॉर्मन लोगों ने इंग्लैंड पर कब विजय प्राप्त की और उनका नेतृत्व किसने किया?",
    "th": "ชาวนอร์มันพิชิตอังกฤษเมื่อใดและใครเป็นผู้นำพวกเขา",
    "zh": "诺曼人什么时候征服了英格兰，是谁领导他们的？",
    "ja": "ノルマン人はいつイングランドを征服し、誰が彼らを率いたのか？",
    "ko": "노르만인들은 언제 잉글랜드를 정복했고 누가 그들을 이끌었나요?",
    "mixed": "Who wrote 战争与和平 in Москва?",
}


def _allowed(original: str, perturbed: str) -> None:
    """Every character of the output is of a script of the input, or is a space/punctuation
    character that the input already had (plus plain spaces)."""
    scripts = text_scripts(original)
    for ch in perturbed:
        script = char_script(ch)
        if script == COMMON:
            assert ch in original or ch == " ", f"new common character {ch!r} in {perturbed!r}"
        elif script == "Inherited":
            assert ch in unicodedata.normalize("NFD", original), f"new mark {ch!r}"
        else:
            assert script in scripts, f"{ch!r} ({script}) foreign to {original!r}"


@pytest.mark.parametrize("name", PERTURBATIONS)
@pytest.mark.parametrize("lang", sorted(QUERIES))
def test_outputs_stay_in_the_scripts_of_the_input(name, lang):
    text = QUERIES[lang]
    for seed in range(15):
        out = perturb_text(text, name, 0.3, np.random.default_rng(seed)).text
        _allowed(text, out)


@pytest.mark.parametrize("name", ["typo", "typo-substitute", "word-dropout", "case", "diacritics"])
def test_rate_is_respected_on_average(name):
    rng = np.random.default_rng(0)
    edits = units = 0
    for _ in range(300):
        result = perturb_text(QUERIES["vi"], name, 0.2, rng)
        edits, units = edits + result.edits, units + result.units
    assert units > 0 and edits / units == pytest.approx(0.2, abs=0.02)


def test_typo_substitute_changes_about_rate_of_letters():
    text = "abcdefghij" * 10
    diffs = [sum(a != b for a, b in zip(text, perturb_text(text, "typo-substitute", 0.1,
                                                           np.random.default_rng(s)).text)) for s in range(50)]
    assert 8 <= np.mean(diffs) <= 10.5   # ~10 edits; a position hit twice counts once


def test_rate_zero_is_identity_and_rate_checked():
    for name in PERTURBATIONS:
        assert perturb_text(QUERIES["de"], name, 0.0, np.random.default_rng(0)).text == QUERIES["de"]
    with pytest.raises(ConfigError, match="rate must be in"):
        parse_perturb_spec("typo:1.5")
    with pytest.raises(ConfigError, match="unknown perturbation"):
        parse_perturb_spec("typos:0.1")
    assert parse_perturb_spec("case:0.5") == ("case", 0.5)


def test_kinds_do_what_they_say():
    rng = np.random.default_rng
    assert perturb_text("café naïve Ωμέγα", "diacritics", 1.0, rng(0)).text == "cafe naive Ωμεγα"
    hindi = QUERIES["hi"]
    assert perturb_text(hindi, "diacritics", 1.0, rng(0)).text == hindi        # vowel signs kept
    assert perturb_text("Hello", "case", 1.0, rng(0)).text == "hELLO"
    dropped = perturb_text("a b c d e f g h i j", "word-dropout", 0.5, rng(1)).text.split()
    assert len(dropped) == 5 and all(w in "abcdefghij" for w in dropped)
    assert perturb_text("solo", "word-dropout", 1.0, rng(1)).text == "solo"    # one word always kept
    shuffled = perturb_text("a b c d e f g h i j", "word-shuffle", 1.0, rng(2)).text.split()
    assert sorted(shuffled) == list("abcdefghij") and shuffled != list("abcdefghij")
    zh = perturb_text(QUERIES["zh"], "word-shuffle", 0.5, rng(3))
    assert zh.text != QUERIES["zh"] and sorted(zh.text) == sorted(QUERIES["zh"])
    th = perturb_text(QUERIES["th"], "word-dropout", 0.5, rng(3))
    assert th.text == QUERIES["th"] and "Thai" in th.skipped
    assert len(perturb_text("abcdef", "typo-insert", 0.5, rng(4)).text) == 9
    assert len(perturb_text("abcdef", "typo-delete", 0.5, rng(4)).text) == 3
    # marks stay on their letter: insertion after the cluster, deletion of the whole cluster
    for seed in range(20):
        for op in ("typo-insert", "typo-delete"):
            out = perturb_text("कि कु", op, 0.3, rng(seed)).text
            assert not out.startswith(("ि", "ु")) and "ि" not in out.replace("कि", "")
    swapped = perturb_text("abcdef", "typo-swap", 0.2, rng(5)).text
    assert sorted(swapped) == list("abcdef") and swapped != "abcdef"


def _collection():
    queries = [Query(f"q{i}-{lang}", lang, text, f"g{i}") for i in range(3) for lang, text in QUERIES.items()]
    return Collection("toy", queries, [Candidate("c1", "en", "passage", ("g0",))])


def test_collection_perturbation_is_seeded_and_leaves_candidates_alone():
    coll = _collection()
    a = perturb_collection(coll, "typo", 0.2, seed=7)
    b = perturb_collection(coll, "typo", 0.2, seed=7)
    c = perturb_collection(coll, "typo", 0.2, seed=8)
    assert [q.text for q in a.queries] == [q.text for q in b.queries]
    assert [q.text for q in a.queries] != [q.text for q in c.queries]
    assert a.candidates == coll.candidates and [q.id for q in a.queries] == [q.id for q in coll.queries]
    assert coll.queries[0].text == QUERIES["en"]                      # input untouched
    # a query's perturbation does not depend on the other queries
    alone = perturb_collection(Collection("one", coll.queries[5:6], []), "typo", 0.2, seed=7)
    assert alone.queries[0].text == a.queries[5].text
    meta = a.meta["perturbation"]
    assert meta["queries"] == len(coll.queries) and meta["queries_changed"] > 20
    skipped = perturb_collection(coll, "word-shuffle", 0.5, seed=1).meta["perturbation"]["skipped"]
    assert skipped == {"Thai: no word boundaries": 3}


def test_robustness_report_deltas_and_flips():
    clean = {"settings": {"mono": {"map": 0.8, "r@1": 0.7}}, "rank_distance": {"mean": 5.0},
             "per_language": {"mono": {"en": {"map": 0.9}, "de": {"map": 0.7}}}}
    pert = {"settings": {"mono": {"map": 0.6, "r@1": 0.5}}, "rank_distance": {"mean": 7.0},
            "per_language": {"mono": {"en": {"map": 0.8}, "de": {"map": 0.4}}}}
    rows = lambda ranks: [{"setting": "mono", "query": f"q{i}", "qlang": "en", "clang": "en", "first_rank": r}
                          for i, r in enumerate(ranks)]
    rep = robustness_report(clean, pert, rows([1, 1, 2, 3]), rows([1, 2, 1, 3]),
                            top1_clean={"q0": "a", "q1": "b"}, top1_perturbed={"q0": "a", "q1": "c"})
    assert rep["settings"]["mono"]["map"]["delta"] == pytest.approx(-0.2)
    assert rep["per_language"]["mono"]["de"]["map"]["delta"] == pytest.approx(-0.3)
    assert rep["rank_distance"]["delta"] == pytest.approx(2.0)
    flips = rep["top1_flips"]["per_setting"]["mono"]["all"]
    assert flips == {"n": 4, "hit_to_miss": 1, "miss_to_hit": 1, "flipped_share": 0.5}
    assert rep["top1_changed"] == {"n": 2, "changed": 1, "share": 0.5}
