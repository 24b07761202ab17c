"""MLQA test + German answers (`mlqa` option `german_answers`): join, sentence positives, report.

Fixture (tests/fixtures/data/mlqa_german, see its README.md): q1 joins with its German question
already present, q2 joins and gains its German question, q3 is in no test file (a German-only
item), q4 has no TSV row, q5's answer is not in its paragraph.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mixlingual.cli import main
from mixlingual.data.registry import load_parallel
from mixlingual.errors import DataError

FIX = Path(__file__).parent / "fixtures" / "data" / "mlqa_german"
TSV = FIX / "mlqa-test-de" / "mlqa_test_de_de.tsv"
PARAGRAPH = "Die Stadt liegt am Fluss. Sie hat 5000 Einwohner. Der Bahnhof wurde 1901 gebaut."
SHARED = Path(os.environ.get("MIXLINGUAL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def load(**options):
    items = load_parallel("mlqa", FIX / "mlqa", **options)
    return {item.id: item for item in items}, items.report


@pytest.mark.parametrize("option", ["auto", str(TSV), str(TSV.parent)])
def test_german_answers_give_sentence_positive_and_in_paragraph_negatives(option):
    items, _ = load(german_answers=option)
    q1 = items["q1"]
    assert q1.positives == {"de": "Sie hat 5000 Einwohner.",
                            "es": "La ciudad está junto al río. Tiene 5000 habitantes. La estación se construyó en 1901."}
    assert q1.negatives == {"de": ["Die Stadt liegt am Fluss.", "Der Bahnhof wurde 1901 gebaut."]}
    assert items["q2"].positives == {"de": "Der Bahnhof wurde 1901 gebaut."}


def test_german_questions_join_their_items_and_new_ids_become_german_only_items():
    items, _ = load(german_answers="auto")
    assert items["q1"].queries == {"de": "Wie viele Einwohner hat die Stadt?",
                                   "es": "¿Cuántos habitantes tiene la ciudad?"}
    assert items["q2"].queries["de"] == "Wann wurde der Bahnhof gebaut?" and items["q2"].mono_languages == ["de"]
    q3 = items["q3"]   # quoted TSV field: the quotes are CSV quoting, not text
    assert q3.queries == {"de": "Wann friert der See zu?"} and q3.positives == {"de": "Im Winter friert er zu."}
    assert q3.negatives == {"de": ['Der "Blaue See" ist tief.']}


def test_unlocatable_and_missing_answers_keep_the_paragraph_and_are_counted():
    items, report = load(german_answers="auto")
    assert items["q4"].positives == {"de": PARAGRAPH} and "de" not in items["q4"].queries
    assert items["q5"].positives == {"de": PARAGRAPH} and not items["q5"].negatives
    assert items["q5"].queries["de"] == "Hat die Stadt einen Hafen?"
    assert report.loaded == 5 and not report.skipped
    notes = report.notes
    assert {k: v for k, v in notes.items() if k.startswith("german_")} == {
        "german_rows_read": 4, "german_rows_joined": 3, "german_rows_as_new_items": 1,
        "german_contexts_added_from_tsv": 1, "german_answers_by_search": 3, "german_answers_not_located": 1,
        "german_questions_added": 3, "german_questions_already_present": 1,
        "german_contexts_without_answer_row": 1}
    assert notes["sentence_positives_de"] == 3 and notes["paragraph_positives_de"] == 2
    assert notes["paragraph_positives_es"] == 1 and "sentence_positives_es" not in notes


def test_without_the_option_every_passage_stays_a_counted_paragraph():
    items, report = load()
    assert sorted(items) == ["q1", "q2", "q4", "q5"] and items["q1"].positives["de"] == PARAGRAPH
    assert report.notes["paragraph_positives_de"] == 4 and not any(k.startswith("german_") for k in report.notes)


def test_auto_without_the_folder_and_dev_files_leave_german_answers_off(tmp_path, caplog):
    shutil.copytree(FIX / "mlqa", tmp_path / "mlqa")
    with caplog.at_level("WARNING", logger="mixlingual.data"):
        items = load_parallel("mlqa", tmp_path / "mlqa", german_answers="auto")
    assert items.report.notes["paragraph_positives_de"] == 4
    assert "German passages stay paragraphs" in caplog.text
    dev = Path(__file__).parent / "fixtures" / "data" / "mlqa"
    with pytest.raises(DataError, match="german_answers: the German answers are MLQA test rows"):
        load_parallel("mlqa", dev, split="dev", german_answers=str(TSV))
    with pytest.raises(DataError, match="no such file"):
        load_parallel("mlqa", FIX / "mlqa", german_answers=str(tmp_path / "missing.tsv"))


def test_langs_without_german_leave_the_rows_unused_and_counted():
    items = load_parallel("mlqa", FIX / "mlqa", german_answers="auto", langs=["es"])
    assert all("de" not in i.queries and "de" not in i.positives for i in items)
    assert items.report.notes["german_rows_unused_de_not_in_langs"] == 1


BAD_ROWS = [
    ("q1\tde\tde\n", 2, "expected 6 tab-separated fields, got 3"),
    (f"{PARAGRAPH}\t5000\tFrage?\tq1\ten\tde\n", 2, "field 'doc_lang': expected 'de', got 'en'"),
    (f"{PARAGRAPH}\t\tFrage?\tq1\tde\tde\n", 2, "field 'Answer': empty value"),
    (f"{PARAGRAPH}\t5000\tFrage?\tq1\tde\tde\n{PARAGRAPH}\t1901\tFrage?\tq1\tde\tde\n", 3,
     "field 'id': duplicate id q1 \\(first on line 2\\)"),
]


@pytest.mark.parametrize("body, line, message", BAD_ROWS)
def test_malformed_rows_name_file_line_and_field(tmp_path, body, line, message):
    bad = tmp_path / "mlqa_test_de_de.tsv"
    bad.write_text("Document\tAnswer\tQuery\tid\tdoc_lang\tqa_lang\n" + body, encoding="utf-8")
    with pytest.raises(DataError, match=f"mlqa_test_de_de.tsv:{line}: {message}"):
        load_parallel("mlqa", FIX / "mlqa", german_answers=str(bad))


def test_header_without_a_column_is_an_error(tmp_path):
    bad = tmp_path / "mlqa_test_de_de.tsv"
    bad.write_text("Document\tAnswer\tQuestion\tid\tdoc_lang\tqa_lang\n", encoding="utf-8")
    with pytest.raises(DataError, match="mlqa_test_de_de.tsv:1: field 'Query': header lacks column"):
        load_parallel("mlqa", FIX / "mlqa", german_answers=str(bad))


def test_inspect_prints_the_load_report(capsys):
    assert main(["data", "inspect", "mlqa", str(FIX / "mlqa"), "-o", "german_answers=auto"]) == 0
    out = capsys.readouterr().out
    assert "load report:" in out and "sentence_positives_de=3" in out and "german_rows_read=4" in out


def german_only(tmp_path, *rows: tuple[str, str, str, str], **options):
    """Items from the fixture's test files plus a TSV written here: (id, paragraph, answer,
    question) rows whose ids are in no test file, so each becomes a German-only item."""
    tsv = tmp_path / "mlqa_test_de_de.tsv"
    lines = [f"{doc}\t{answer}\t{question}\t{qa_id}\tde\tde" for qa_id, doc, answer, question in rows]
    tsv.write_text("\n".join(["Document\tAnswer\tQuery\tid\tdoc_lang\tqa_lang", *lines]) + "\n", encoding="utf-8")
    items = load_parallel("mlqa", FIX / "mlqa", german_answers=str(tsv), **options)
    return {item.id: item for item in items}, items.report.notes


STADION = "Der Verein wurde 1950 gegründet. Das Stadion wurde 1950 eröffnet. Es fasst 20000 Zuschauer."


def test_an_answer_in_several_sentences_goes_to_the_one_sharing_most_words_with_the_question(tmp_path):
    items, notes = german_only(tmp_path, ("a1", STADION, "1950", "Wann wurde das Stadion eröffnet?"),
                               ("a2", STADION, "1950", "In welchem Jahr?"))   # no shared word: a tie
    assert items["a1"].positives == {"de": "Das Stadion wurde 1950 eröffnet."}
    assert items["a2"].positives == {"de": "Der Verein wurde 1950 gegründet."}   # ties: the first sentence
    assert notes["german_answers_ambiguous"] == 2 and notes["german_answers_not_at_first_occurrence"] == 1


def test_a_blank_answers_offset_zero_does_not_place_the_german_answer(tmp_path):
    """Every test-file answer is blank with answer_start 0: an answer that starts the paragraph
    is not thereby placed there."""
    import json

    context = "1950 wurde der Verein gegründet. Das Stadion wurde 1950 eröffnet."
    test = tmp_path / "mlqa" / "MLQA_V1" / "test"
    test.mkdir(parents=True)
    squad = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "z1", "question": "¿Cuándo se inauguró el estadio?", "answers": [{"text": "", "answer_start": 0}]}]}]}]}
    (test / "test-context-de-question-es.json").write_text(json.dumps(squad), encoding="utf-8")
    tsv = tmp_path / "mlqa_test_de_de.tsv"
    tsv.write_text("Document\tAnswer\tQuery\tid\tdoc_lang\tqa_lang\n"
                   f"{context}\t1950\tWann wurde das Stadion eröffnet?\tz1\tde\tde\n", encoding="utf-8")
    items = load_parallel("mlqa", tmp_path / "mlqa", german_answers=str(tsv))
    assert items[0].positives == {"de": "Das Stadion wurde 1950 eröffnet."}
    assert items[0].negatives == {}   # the other sentence holds 1950 too
    assert items.report.notes["german_answers_by_search"] == 1 and "german_answers_at_offset" not in items.report.notes


def test_on_a_tie_the_answer_as_whole_words_beats_the_answer_inside_a_longer_word(tmp_path):
    items, notes = german_only(tmp_path, ("w1", "Viele Berliner feierten. Die Mauer fiel in Berlin.", "Berlin",
                                          "Wo geschah es?"))   # no word shared with either sentence
    assert items["w1"].positives == {"de": "Die Mauer fiel in Berlin."}
    assert items["w1"].negatives == {"de": ["Viele Berliner feierten."]}   # "Berliner" is not the answer
    assert notes["german_answers_ambiguous"] == 1 and notes["german_answers_not_at_first_occurrence"] == 1


def test_no_hard_negative_contains_the_answer_as_whole_normalized_tokens(tmp_path):
    doc = ("Die Mauer stand in Berlin. Viele Berliner feierten 1989. Er zog nach BERLIN, später nach Bonn. "
           "Die Stadt Berlin-Mitte wuchs. Bonn blieb klein.")
    items, notes = german_only(tmp_path, ("b1", doc, "Berlin", "Wo stand die Mauer?"),
                               ("s1", STADION, "1950", "Wann wurde das Stadion eröffnet?"))
    assert items["b1"].positives == {"de": "Die Mauer stand in Berlin."}
    # casefold and punctuation as spaces: "BERLIN," and "Berlin-Mitte" hold the answer; "Berliner" does not
    assert items["b1"].negatives == {"de": ["Viele Berliner feierten 1989.", "Bonn blieb klein."]}
    assert items["s1"].negatives == {"de": ["Es fasst 20000 Zuschauer."]}   # the other 1950 sentence is out
    assert notes["negatives_excluded_containing_answer_de"] == 3
    assert notes["positives_with_negatives_excluded_de"] == 2


def test_positives_left_with_fewer_negatives_than_asked_are_counted(tmp_path):
    _, notes = german_only(tmp_path, ("s1", STADION, "1950", "Wann wurde das Stadion eröffnet?"),
                           ("s2", STADION, "20000", "Wie viele Zuschauer?"), max_negatives=2)
    assert notes["positives_with_fewer_than_2_negatives_de"] == 1   # s1: one left; s2 keeps two
    _, notes = german_only(tmp_path, ("s1", STADION, "1950", "Wann wurde das Stadion eröffnet?"))
    assert notes["positives_with_fewer_than_3_negatives_de"] == 1   # default: the configs' 3


def _holds_answer(sentence: str, answer: str) -> bool:
    """The rule, restated here: whole tokens of NFKC + casefold text, punctuation as spaces."""
    from mixlingual.data.overlap import normalize_text

    return f" {normalize_text(answer)} " in f" {normalize_text(sentence)} "


@pytest.mark.shared_data
def test_real_german_hard_negatives_never_contain_their_answer():
    if not (SHARED / "mlqa").exists() or not (SHARED / "mlqa-test-de").exists():
        pytest.skip(f"shared data {SHARED}/mlqa and mlqa-test-de not present")
    from mixlingual.data import mlqa_german

    items = load_parallel("mlqa", SHARED / "mlqa", german_answers="auto")
    answers = {qa_id: row.answer for qa_id, row in mlqa_german.read_rows(
        SHARED / "mlqa-test-de" / mlqa_german.FILE).items()}
    holding = [(i.id, s) for i in items for s in i.negatives.get("de", []) if _holds_answer(s, answers[i.id])]
    assert not holding, f"{len(holding)} German hard negatives contain their answer, first {holding[0]}"
    notes = items.report.notes
    assert notes["german_answers_ambiguous"] == 476 and notes["german_answers_not_at_first_occurrence"] == 183
    assert notes["negatives_excluded_containing_answer_de"] == 782
    assert notes["positives_with_negatives_excluded_de"] == 485
    assert notes["positives_with_fewer_than_3_negatives_de"] == 1804
    assert sum(len(i.negatives.get("de", [])) for i in items) == 19911


@pytest.mark.shared_data
def test_real_german_answers_join_the_mlqa_test_files():
    if not (SHARED / "mlqa").exists() or not (SHARED / "mlqa-test-de").exists():
        pytest.skip(f"shared data {SHARED}/mlqa and mlqa-test-de not present")
    items = load_parallel("mlqa", SHARED / "mlqa", german_answers="auto")
    notes = items.report.notes
    assert len(items) == 9677 + 103 and not items.report.skipped
    assert notes["german_rows_read"] == 4513 and notes["german_rows_joined"] == 4410
    assert notes["german_rows_as_new_items"] == 103 and notes["german_contexts_without_answer_row"] == 4
    assert notes.get("german_answers_not_located", 0) == 0 and notes["german_answers_by_search"] == 4513
    assert "german_documents_differing_from_test_context" not in notes   # CSV quoting read right
    assert notes["german_questions_added"] == 696 and notes["german_questions_already_present"] == 3817
    assert notes["sentence_positives_de"] == 4513 and notes["paragraph_positives_de"] == 4
    assert (notes["paragraph_positives_es"], notes["paragraph_positives_vi"], notes["paragraph_positives_zh"]) \
        == (5156, 1675, 5011)
    assert sum("de" in i.mono_languages for i in items) == 4517   # German X-X pairs
    assert sum(bool(i.negatives.get("de")) for i in items) == 4054   # 4,086 before answer-holding ones left


@pytest.mark.parametrize("name", ["mlqa-hybrid.yaml", "mlqa-xx.yaml", "mlqa-xy.yaml", "sweeps/base-mlqa-e5.yaml"])
def test_mlqa_configs_read_the_german_answers_and_use_hard_negatives(name):
    from mixlingual.training.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert config.data.train.options == {"split": "test", "german_answers": "auto"}
    assert config.data.hard_negatives == 3


def test_auto_on_dev_files_is_silent_and_changes_nothing(caplog):
    dev = Path(__file__).parent / "fixtures" / "data" / "mlqa"
    with caplog.at_level("WARNING", logger="mixlingual.data"):
        items = load_parallel("mlqa", dev, split="dev", german_answers="auto")
    assert len(items) == 2 and not any(k.startswith("german_") for k in items.report.notes)
    assert "german_answers" not in caplog.text
