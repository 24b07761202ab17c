"""Dataset loaders on the small fixtures in tests/fixtures/data (no shared data needed)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mixlingual.data import registry
from mixlingual.data.registry import load_collection, load_parallel
from mixlingual.errors import DataError

FIX = Path(__file__).parent / "fixtures" / "data"


def relevant_texts(collection, query):
    return sorted(c.text for c in collection.candidates if query.group in c.groups)


def test_every_registry_module_declares_its_interface():
    for name in registry.names():
        loader = registry.get_loader(name)
        assert loader.DESCRIPTION and loader.KINDS
        for kind in loader.KINDS:
            assert callable(getattr(loader, f"load_{kind}"))


@pytest.mark.parametrize("path", [FIX / "mlqa", FIX / "mlqa" / "MLQA_V1" / "dev"])
def test_mlqa_dev_pairs_files_into_sentence_positives_and_negatives(path):
    items = load_parallel("mlqa", path, split="dev")
    by_id = {i.id: i for i in items}
    assert sorted(by_id) == ["q1", "q2"]
    q1 = by_id["q1"]
    assert q1.queries == {"de": "Wie viele Einwohner hat die Stadt?", "es": "¿Cuántos habitantes tiene la ciudad?"}
    assert q1.positives == {"de": "Sie hat 5000 Einwohner.", "es": "Tiene 5000 habitantes."}
    assert q1.negatives["de"] == ["Die Stadt liegt am Fluss.", "Der Bahnhof wurde 1901 gebaut."]
    assert q1.group == "q1" and q1.source == "mlqa/dev"


def test_mlqa_paragraph_and_context_options():
    para = load_parallel("mlqa", FIX / "mlqa", split="dev", context="paragraph")
    assert para[0].positives["de"].startswith("Die Stadt liegt am Fluss.") and not para[0].negatives
    both = load_parallel("mlqa", FIX / "mlqa", split="dev", context="sentence+paragraph")
    assert both[0].positives["es"] == "Tiene 5000 habitantes."
    assert both[0].meta["contexts"]["es"].startswith("La ciudad")
    with pytest.raises(DataError, match="context must be one of"):
        load_parallel("mlqa", FIX / "mlqa", context="page")


def test_mlqa_test_files_with_blank_answers_are_reported_not_hidden():
    items = load_parallel("mlqa", FIX / "mlqa")  # split="test": answers blanked, cross-lingual files only
    assert len(items) == 2 and set(items[0].queries) == {"de", "es"} and set(items[0].positives) == {"de", "es"}
    assert items[0].positives["de"] == "Die Stadt liegt am Fluss. Sie hat 5000 Einwohner. Der Bahnhof wurde 1901 gebaut."
    assert items.report.notes["answers_with_empty_text"] == 4
    skipped = load_parallel("mlqa", FIX / "mlqa", on_missing_answer="skip")
    assert len(skipped) == 0 and skipped.report.skipped["no_usable_answer"] == 2


def _squad_file(path: Path, paragraphs: dict[str, list[str]]) -> None:
    """A SQuAD-JSON file with blank answers (as in the MLQA test release): context -> QA ids."""
    data = [{"title": "t", "paragraphs": [
        {"context": context, "qas": [{"id": qa, "question": f"question {qa}?", "answers": [{"text": "", "answer_start": 0}]}
                                     for qa in ids]} for context, ids in paragraphs.items()]}]
    path.write_text(json.dumps({"version": "1.0", "data": data}), encoding="utf-8")


def test_mlqa_parallel_paragraph_links_questions_through_shared_translations(tmp_path):
    """a (context de) and b (context vi) share no text; c has both contexts, so all three are one
    parallel paragraph. e's German context differs from a's only by quotes; d is another paragraph."""
    folder = tmp_path / "MLQA_V1" / "test"
    folder.mkdir(parents=True)
    de, vi = "Wien liegt an der Donau. Es hat zwei Millionen Einwohner.", "Viên nằm bên sông Danube. Có hai triệu dân."
    _squad_file(folder / "test-context-de-question-es.json", {de: ["a", "c"], "Graz liegt an der Mur.": ["d"]})
    _squad_file(folder / "test-context-vi-question-zh.json", {vi: ["b", "c"]})
    _squad_file(folder / "test-context-de-question-zh.json", {'"' + de.replace("Donau", '"Donau"'): ["e"]})
    items = load_parallel("mlqa", tmp_path)
    paragraph = {item.id: item.meta["parallel_paragraph"] for item in items}
    by_id = {item.id: item for item in items}
    assert sorted(by_id) == ["a", "b", "c", "d", "e"]
    assert set(by_id["a"].positives.values()).isdisjoint(by_id["b"].positives.values())
    assert paragraph == {"a": "mlqa:a", "b": "mlqa:a", "c": "mlqa:a", "e": "mlqa:a", "d": "mlqa:d"}
    assert items.report.notes["parallel_paragraphs"] == 2


def test_mlqa_single_file_and_bad_names(tmp_path):
    one = load_parallel("mlqa", FIX / "mlqa/MLQA_V1/dev/dev-context-de-question-es.json")
    assert one[0].queries.keys() == {"es"} and one[0].positives.keys() == {"de"}
    bad = tmp_path / "mlqa.json"
    bad.write_text("{}")
    with pytest.raises(DataError, match="not an MLQA file name"):
        load_parallel("mlqa", bad)
    broken = tmp_path / "dev-context-de-question-de.json"
    broken.write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}))
    with pytest.raises(DataError, match="missing key 'context'"):
        load_parallel("mlqa", broken)


def test_xquad_r_collection_links_answer_sentences_across_languages():
    col = load_collection("xquad-r", FIX / "xquad-r")
    assert col.counts() == {"de": {"queries": 2, "candidates": 2}, "en": {"queries": 2, "candidates": 2}}
    assert all("\ufeff" not in c.text for c in col.candidates)
    query = next(q for q in col.queries if q.lang == "en" and q.group == "x2")
    assert relevant_texts(col, query) == ["Er friert im Winter zu.", "It freezes in winter."]
    ctx = load_collection("xquad-r", FIX / "xquad-r", candidate="sentence+context", langs=["en"])
    assert ctx.languages == ["en"] and ctx.candidates[0].context == "The lake is deep. It freezes in winter."


def _write_xquad_articles(folder, n_articles=4, per_article=2):
    """A two-language XQuAD-R folder: `n_articles` articles of `per_article` one-question paragraphs."""
    def paragraph(a, p, lang):
        text = f"Article {a} paragraph {p} ({lang}). Second sentence."
        cut = text.index(". ") + 1
        return {"context": text, "sentences": [text[:cut], text[cut + 1:]],
                "sentence_breaks": [[0, cut], [cut + 1, len(text)]],
                "qas": [{"id": f"q{a}.{p}", "question": f"Which {a}.{p}?", "answers": [{"text": "x", "answer_start": 0}]}]}

    for lang in ("de", "en"):
        data = {"data": [{"title": f"t{a}", "paragraphs": [paragraph(a, p, lang) for p in range(per_article)]}
                         for a in range(n_articles)]}
        (folder / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")


def test_xquad_r_article_subsets_are_disjoint_halves_and_compose_with_paragraphs(tmp_path):
    _write_xquad_articles(tmp_path)
    first = load_collection("xquad-r", tmp_path, articles="0-1")
    second = load_collection("xquad-r", tmp_path, articles=[2, "3"])
    assert {q.group for q in first.queries} == {"q0.0", "q0.1", "q1.0", "q1.1"}
    assert {q.group for q in second.queries} == {"q2.0", "q2.1", "q3.0", "q3.1"}
    assert first.counts()["en"] == {"queries": 4, "candidates": 8} and first.meta["articles"] == [0, 1]
    # every relevant candidate of a half lies in that half (a complete collection on its own)
    assert all(c.id.split(":")[1].split(".")[0] in {"2", "3"} for c in second.candidates)
    # paragraphs=N keeps the first N paragraphs of the chosen articles
    small = load_collection("xquad-r", tmp_path, articles="1,3", paragraphs=3)
    assert sorted({q.group for q in small.queries}) == ["q1.0", "q1.1", "q3.0"]


@pytest.mark.parametrize("articles, message", [
    ("0-9", r"field 'articles': 4, 5, 6, 7, 8, 9 out of range; this file has 4 articles \(0-3\)"),
    ("3-1", "field 'articles': range '3-1' ends before it starts"),
    ("first", "field 'articles': expected indices or ranges"),
    ([], "field 'articles': no article index"),
])
def test_xquad_r_bad_articles_name_the_option(tmp_path, articles, message):
    _write_xquad_articles(tmp_path)
    with pytest.raises(DataError, match=message):
        load_collection("xquad-r", tmp_path, articles=articles)


def test_mlqa_r_collection_from_same_language_files():
    col = load_collection("mlqa-r", FIX / "mlqa")
    assert col.counts() == {"de": {"queries": 2, "candidates": 3}, "es": {"queries": 2, "candidates": 3}}
    query = next(q for q in col.queries if q.lang == "de" and q.group == "q2")
    assert relevant_texts(col, query) == ["Der Bahnhof wurde 1901 gebaut.", "La estación se construyó en 1901."]
    assert col.meta["splitter"] in ("icu", "sentencex")


def test_tatoeba_directions_and_alignment_check(tmp_path):
    col = load_collection("tatoeba", FIX / "tatoeba")
    assert col.counts() == {"deu": {"queries": 2, "candidates": 0}, "eng": {"queries": 0, "candidates": 5},
                            "swh": {"queries": 3, "candidates": 0}}
    query = next(q for q in col.queries if q.text == "Nyumba ni nyekundu.")
    assert relevant_texts(col, query) == ["The house is red."] and query.group == "swh:1"
    both = load_collection("tatoeba", FIX / "tatoeba", langs=["deu"], direction="both")
    assert both.counts() == {"deu": {"queries": 2, "candidates": 2}, "eng": {"queries": 2, "candidates": 2}}
    (tmp_path / "tatoeba.fra-eng.fra").write_text("Un.\nDeux.\n")
    (tmp_path / "tatoeba.fra-eng.eng").write_text("One.\n")
    with pytest.raises(DataError, match="not line-aligned"):
        load_collection("tatoeba", tmp_path)


def test_trec_tsv_topics_qrels_and_corpus():
    col = load_collection("trec", FIX / "trec")
    assert [(q.id, q.lang) for q in col.queries] == [("t1", "en"), ("t2", "de")]
    assert {c.id: c.groups for c in col.candidates} == {"d1": ("t1",), "d2": (), "d3": ("t2",)}
    assert col.candidates[0].text == "Lake\nThe lake lies north of the town."
    assert col.meta["qrels"]["t2"] == {"d3": 2, "d9": 1}
    assert col.meta["load_report"]["notes"] == {"judged_relevant_documents_missing_from_corpus": 1}


def test_trec_topic_markup_and_missing_language():
    col = load_collection("trec", FIX / "trec", topics=FIX / "trec/topics.xml", lang="en", field="desc")
    assert col.queries[0].id == "401" and col.queries[0].text == "What language do minorities speak?"
    with pytest.raises(DataError, match="no language"):
        load_collection("trec", FIX / "trec", topics=FIX / "trec/topics.xml")


def test_mmarco_tsv_layout_with_hard_negatives():
    items = load_parallel("mmarco", FIX / "mmarco", langs=["de", "es"], negatives=1)
    assert [i.id for i in items] == ["100", "101"]
    assert items[0].queries == {"de": "was ist ein see", "es": "qué es un lago"}
    assert items[0].positives == {"de": "Ein See ist ein stehendes Gewässer.", "es": "Un lago es una masa de agua."}
    assert items[0].negatives == {"de": ["Flüsse fließen ins Meer."], "es": ["Los ríos desembocan en el mar."]}
    assert items.report.notes["queries_without_relevant_passage"] == 1
    assert len(load_parallel("mmarco", FIX / "mmarco", langs=["de", "es"], max_items=1)) == 1


class FakeDataset:
    """Stands in for an ir_datasets dataset: queries_iter / qrels_iter / docpairs_iter / docs_store."""

    def __init__(self, lang):
        self.lang = lang
        self.docs = {"d1": f"{lang} passage one", "d2": f"{lang} passage two", "d3": f"{lang} negative"}

    def queries_iter(self):
        return iter([SimpleNamespace(query_id=q, text=f"{self.lang} query {q}") for q in ("1", "2", "3")])

    def qrels_iter(self):
        return iter([SimpleNamespace(query_id="1", doc_id="d1", relevance=1),
                     SimpleNamespace(query_id="3", doc_id="d2", relevance=1)])

    def docpairs_iter(self):
        return iter([SimpleNamespace(query_id="1", doc_id_a="d1", doc_id_b="d3")])

    def docs_store(self):
        docs = self.docs
        return SimpleNamespace(get_many=lambda ids: {i: SimpleNamespace(text=docs[i]) for i in ids if i in docs})


def test_mmarco_ir_datasets_path_with_a_fake_dataset():
    opened = []

    def factory(name):
        opened.append(name)
        return FakeDataset(name.split("/")[2])

    items = load_parallel("mmarco", None, langs=["de", "dt"], negatives=1, dataset_factory=factory)
    assert opened == ["mmarco/v2/de/train", "mmarco/v2/dt/train"]
    assert [i.id for i in items] == ["1", "3"]
    assert items[0].queries == {"de": "de query 1", "nl": "dt query 1"}  # Dutch "dt" -> "nl"
    assert items[0].negatives == {"de": ["de negative"], "nl": ["dt negative"]}
    assert items.report.notes["queries_without_relevant_passage"] == 1


def test_demo_set_languages_sizes_and_links():
    items = load_parallel("demo", None)
    assert len(items) == 60 and all(sorted(i.queries) == ["de", "en", "es", "fr", "ru", "sw"] for i in items)
    col = load_collection("demo", None)
    assert len(col.queries) == 22 * 6 and len(col.candidates) == 25 * 6
    relevant = col.relevant_by_group()
    assert all(len(relevant[q.group]) == 6 for q in col.queries)
    assert {q.group for q in col.queries}.isdisjoint({i.id for i in items})


def test_xquad_r_first_paragraphs_make_a_smaller_complete_collection(tmp_path):
    def paragraph(i, lang):
        text = f"Sentence {i} one ({lang}). Sentence {i} two."
        return {"context": text, "sentences": text.split(". ", 1),
                "sentence_breaks": [[0, text.index(". ") + 1], [text.index(". ") + 2, len(text)]],
                "qas": [{"id": f"q{i}", "question": f"Which {i}?", "answers": [{"text": "x", "answer_start": 0}]}]}

    for lang in ("de", "en"):
        data = {"data": [{"title": "t", "paragraphs": [paragraph(i, lang) for i in range(3)]}]}
        (tmp_path / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")
    full = load_collection("xquad-r", tmp_path)
    small = load_collection("xquad-r", tmp_path, paragraphs=2)
    assert full.counts()["en"] == {"queries": 3, "candidates": 6}
    assert small.counts() == {"de": {"queries": 2, "candidates": 4}, "en": {"queries": 2, "candidates": 4}}
    assert {q.group for q in small.queries} == {"q0", "q1"}
    assert small.meta["load_report"]["notes"]["paragraphs_left_out_by_option"] == 2
    with pytest.raises(DataError, match="paragraphs must be a positive integer"):
        load_collection("xquad-r", tmp_path, paragraphs=0)


def test_mlqa_hard_negatives_are_the_answer_sentences_neighbours_first():
    """`data.hard_negatives = k` takes the first k negatives: they must be the sentences next
    to the answer (same topic, hardest), not the paragraph's opening sentences."""
    from mixlingual.data.mlqa import item_passages
    from mixlingual.data.report import LoadReport

    paragraph = "Erster Satz hier. Zweiter Satz hier. Dritter Satz hier. Die Antwort ist vierzig. Letzter Satz hier."
    start = paragraph.index("vierzig")
    _, hard, _, kinds = item_passages({"de": (paragraph, start, "vierzig")}, context="sentence", negatives=True,
                                      max_negatives=None, splitter="icu", on_missing_answer="paragraph",
                                      report=LoadReport("mlqa"))
    assert kinds == {"de": "sentence"}
    assert hard["de"] == ["Dritter Satz hier.", "Letzter Satz hier.", "Zweiter Satz hier.", "Erster Satz hier."]
