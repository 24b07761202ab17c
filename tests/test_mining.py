"""Mined hard negatives (`mixlingual.training.mining`, `mixlingual mine`): translations and duplicates of the
positive are never mined, the margin filter works, counts add up, existing negatives merge."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.cli import main
from mixlingual.data.jsonl import read_parallel, write_parallel
from mixlingual.data.overlap import normalize_text
from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.mining import RULES, MineOptions, merge_negatives, mine_negatives

FIX = Path(__file__).parent / "fixtures" / "data"
DIM = 64


def _axis(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    return v


def _at(cos: float, axis: int) -> np.ndarray:
    """A unit vector with cosine `cos` to axis 0 (the query) and the rest on its own axis."""
    return (cos * _axis(0) + np.sqrt(1 - cos ** 2) * _axis(axis)).astype(np.float32)


class FakeEncoder:
    """Embeddings from a table (unit vectors); unknown texts get a seeded random unit vector."""

    dim = DIM

    def __init__(self, table: dict[tuple[str, str], np.ndarray]):
        self.table = table
        self.encoded: list[str] = []

    def fingerprint(self) -> str:
        return "fake-encoder"

    def encode(self, texts, kind="passage", batch_size=64, show_progress=None):
        self.encoded += texts
        rows = []
        for text in texts:
            vec = self.table.get((kind, text))
            if vec is None:
                seed = int(hashlib.sha256(f"{kind}:{text}".encode()).hexdigest()[:8], 16)
                vec = np.random.default_rng(seed).normal(size=DIM)
            rows.append(vec / np.linalg.norm(vec))
        return np.asarray(rows, np.float32)


def _fixture():
    """Group g1: the query's item (de + es) and a second item of the same group whose German
    positive is a paraphrase (a translation of the same answer). The nearest German passages to
    the query are: its own positive (1.0), the paraphrase of group g1 (0.99), a duplicate of the
    positive in another group with other casing/punctuation (merged with it: equal text), a
    passage scoring above 0.95 x the positive (0.97), then two clean negatives (0.90, 0.50)."""
    items = [
        ParallelItem("a", queries={"de": "Wo liegt Paris?", "es": "¿Dónde está París?"},
                     positives={"de": "Paris liegt in Frankreich.", "es": "París está en Francia."}, group="g1"),
        ParallelItem("a2", queries={"de": "In welchem Land ist Paris?"},
                     positives={"de": "Paris befindet sich in Frankreich."}, group="g1"),
        ParallelItem("b", queries={"de": "Frage b"}, positives={"de": "paris liegt in frankreich"}, group="g2"),
        ParallelItem("c", queries={"de": "Frage c"}, positives={"de": "Lyon liegt in Frankreich."}, group="g3"),
        ParallelItem("d", queries={"de": "Frage d"}, positives={"de": "Berlin liegt in Deutschland."}, group="g4"),
        ParallelItem("e", queries={"de": "Frage e"}, positives={"de": "Der Rhein ist lang."}, group="g5"),
        ParallelItem("f", queries={"es": "Pregunta f"}, positives={"es": "Madrid está en España."}, group="g6"),
    ]
    table = {("query", "Wo liegt Paris?"): _axis(0),
             ("query", "¿Dónde está París?"): _axis(0),
             ("passage", "Paris liegt in Frankreich."): _axis(0),
             ("passage", "Paris befindet sich in Frankreich."): _at(0.99, 1),
             ("passage", "Lyon liegt in Frankreich."): _at(0.97, 2),
             ("passage", "Berlin liegt in Deutschland."): _at(0.90, 3),
             ("passage", "Der Rhein ist lang."): _at(0.50, 4),
             ("passage", "París está en Francia."): _axis(0),
             ("passage", "Madrid está en España."): _at(0.80, 5)}
    return items, FakeEncoder(table)


def _by_id(items):
    return {item.id: item for item in items}


def test_translations_and_duplicates_of_the_positive_are_never_mined():
    items, encoder = _fixture()
    out, report = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.95))
    a = _by_id(out)["a"]
    # the three nearest passages are the positive, its same-group paraphrase, its duplicate
    # (merged with the positive by normalized text) and an above-margin passage: none is mined
    assert a.negatives["de"] == ["Berlin liegt in Deutschland.", "Der Rhein ist lang."]
    assert a.negatives["es"] == ["Madrid está en España."]
    assert report.per_language["de"]["same_group"] >= 1
    # the same-group item a2 never gets a's positive either
    a2 = _by_id(out)["a2"]
    assert "Paris liegt in Frankreich." not in a2.negatives.get("de", [])
    assert items[0].negatives == {}  # input items are not changed


def test_exact_counts_on_the_fixture():
    items, encoder = _fixture()
    out, report = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.95))
    # de pool: 5 distinct texts (a's positive and b's duplicate are one); es pool: 2
    assert report.candidates == {"de": 5, "es": 2}
    assert report.items == 7 and report.pairs == 8   # 6 de lists + a/es + f/es
    assert all(len(negatives) <= 2 for item in out for negatives in item.negatives.values())
    total = sum(len(v) for item in out for v in item.negatives.values())
    assert report.mined == total and report.existing_kept == 0
    assert sum(report.rejected.values()) == sum(
        report.per_language[lang][rule] for lang in report.per_language for rule in RULES)
    assert report.per_language["de"]["pairs"] == 6 and report.per_language["es"]["pairs"] == 2
    # every item's own positive is the first thing its list walks over, or at least counted once
    assert report.rejected["equal_text"] >= report.pairs - report.short


def test_counts_per_rule_for_one_list():
    items, encoder = _fixture()
    # only item a has queries: its de list walks positive (equal_text), paraphrase (same_group),
    # Lyon (above_margin), then mines Berlin and the Rhine; its es list walks its positive, mines Madrid
    only_a = [items[0]] + [ParallelItem(i.id, queries={}, positives=i.positives, group=i.group) for i in items[1:]]
    _, report = mine_negatives(encoder, only_a, MineOptions(k=2, depth=6, margin=0.95))
    assert report.pairs == 2   # items without a query have nothing to mine for
    assert dict(report.rejected) == {"equal_text": 2, "same_group": 1, "above_margin": 1}
    assert report.mined == 3 and report.short == 1  # es has only one negative to offer
    _, report = mine_negatives(encoder, only_a, MineOptions(k=5, depth=6, margin=0.95))
    assert report.mined == 3 and report.short == 2  # the pool runs out: every candidate walked


def test_margin_filter():
    items, encoder = _fixture()
    off, report_off = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=None))
    assert _by_id(off)["a"].negatives["de"] == ["Lyon liegt in Frankreich.", "Berlin liegt in Deutschland."]
    assert report_off.rejected["above_margin"] == 0
    # 0.92 x 1.0: Berlin (0.90) is not above, Lyon (0.97) is
    on, report_on = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.92))
    assert _by_id(on)["a"].negatives["de"] == ["Berlin liegt in Deutschland.", "Der Rhein ist lang."]
    # 0.85: Berlin (0.90) goes too; only the Rhine is left
    low, _ = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.85))
    assert _by_id(low)["a"].negatives["de"] == ["Der Rhein ist lang."]


def test_faiss_search_mines_the_same_negatives():
    pytest.importorskip("faiss")
    items, encoder = _fixture()
    exact, report_exact = mine_negatives(encoder, items, MineOptions(k=2, depth=6))
    flat, report_flat = mine_negatives(encoder, items, MineOptions(k=2, depth=6, search="faiss"))
    assert [i.negatives for i in flat] == [i.negatives for i in exact]
    assert report_flat.rejected == report_exact.rejected


def test_invariants_on_random_groups():
    """Groups of 1-3 items whose passages are near each other (translations): the nearest
    neighbours of every query are its own group's passages and duplicates of its positive."""
    rng = np.random.default_rng(0)
    items, table = [], {}
    for g in range(30):
        center = rng.normal(size=DIM)
        for j in range(int(rng.integers(1, 4))):
            item_id = f"g{g}-{j}"
            queries, positives = {}, {}
            for lang in ("de", "es", "zh"):
                if rng.random() < 0.7:
                    positives[lang] = f"passage {item_id} {lang}"
                    table[("passage", positives[lang])] = center + 0.05 * rng.normal(size=DIM)
                if rng.random() < 0.7:
                    queries[lang] = f"query {item_id} {lang}"
                    table[("query", queries[lang])] = center + 0.05 * rng.normal(size=DIM)
            if not positives or not queries:
                continue
            if g % 5 == 0:   # another group holds a duplicate of this positive (other spelling)
                lang, text = next(iter(positives.items()))
                items.append(ParallelItem(f"dup{g}", queries={lang: f"other q{g}"},
                                          positives={lang: text.upper() + " !"}, group=f"dup{g}"))
            items.append(ParallelItem(item_id, queries=queries, positives=positives, group=f"g{g}"))
    encoder = FakeEncoder(table)
    for queries in ("auto", "all"):
        out, report = mine_negatives(encoder, items, MineOptions(k=4, depth=20, margin=None, queries=queries))
        group_texts = {}
        for item in items:
            group_texts.setdefault(item.group, set()).update(normalize_text(t) for t in item.positives.values())
        for item in out:
            for lang, negatives in item.negatives.items():
                keys = [normalize_text(t) for t in negatives]
                assert len(keys) == len(set(keys))
                assert not set(keys) & group_texts[item.group], (item.id, lang)
                assert not set(keys) & {normalize_text(t) for t in item.positives.values()}
        assert report.mined == sum(len(v) for item in out for v in item.negatives.values())
        assert report.rejected["same_group"] > 0 and report.rejected["equal_text"] > 0
        assert report.mined > 0


def test_queries_auto_uses_every_query_language_without_one_in_the_passage_language():
    items = [ParallelItem("x", queries={"ar": "q ar", "hi": "q hi"}, positives={"de": "pos"}),
             ParallelItem("y", queries={"ar": "y ar"}, positives={"de": "near ar"}),
             ParallelItem("z", queries={"ar": "z ar"}, positives={"de": "near hi"})]
    table = {("query", "q ar"): _axis(0), ("query", "q hi"): _axis(1),
             ("passage", "pos"): (_axis(0) + _axis(1)) / np.sqrt(2),
             ("passage", "near ar"): _at(0.6, 2), ("passage", "near hi"): 0.6 * _axis(1) + 0.8 * _axis(3)}
    encoder = FakeEncoder(table)
    out, _ = mine_negatives(encoder, items, MineOptions(k=1, depth=3, margin=None))
    # "near hi" scores 0.6 for the Hindi query, 0 for the Arabic one; "near ar" the reverse:
    # the tie on the max score goes to the lower pool row ("near ar" comes first in the pool)
    assert out[0].negatives["de"] == ["near ar"]
    out, report = mine_negatives(encoder, items, MineOptions(k=2, depth=3, margin=None))
    assert out[0].negatives["de"] == ["near ar", "near hi"]
    # the margin is checked for every query used: 0.6 > 0.5 x 0.707 for both candidates
    out, report = mine_negatives(encoder, items, MineOptions(k=2, depth=3, margin=0.5))
    assert "de" not in out[0].negatives


def test_existing_negatives_merge_and_dedupe():
    items, encoder = _fixture()
    items[0].negatives = {"de": ["Ein Satz aus dem Absatz.", "berlin liegt in deutschland"]}
    out, report = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.95))
    # Berlin is already a negative (other spelling), and so is the paragraph sentence: both are
    # counted, not mined twice; the Rhine is mined and the pool is exhausted (short of k)
    assert _by_id(out)["a"].negatives["de"] == ["Ein Satz aus dem Absatz.", "berlin liegt in deutschland",
                                                "Der Rhein ist lang."]
    assert report.rejected["already_negative"] == 2 and report.existing_kept == 2
    first, _ = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.95, merge="mined-first"))
    assert _by_id(first)["a"].negatives["de"] == ["Der Rhein ist lang.", "Ein Satz aus dem Absatz.",
                                                  "berlin liegt in deutschland"]
    replaced, report = mine_negatives(encoder, items, MineOptions(k=2, depth=6, margin=0.95, merge="replace"))
    assert "Ein Satz aus dem Absatz." not in _by_id(replaced)["a"].negatives["de"]
    assert report.existing_kept == 0 and report.rejected["already_negative"] == 0


def test_merge_negatives_order_and_dedupe():
    assert merge_negatives(["A b", "c"], ["a B!", "d"], "existing-first") == ["A b", "c", "d"]
    assert merge_negatives(["A b", "c"], ["a B!", "d"], "mined-first") == ["a B!", "d", "c"]
    assert merge_negatives(["A b", "c"], ["a B!", "d"], "replace") == ["a B!", "d"]


@pytest.mark.parametrize("options, key", [(dict(k=0), "k"), (dict(k=5, depth=3), "depth"),
                                          (dict(margin=-1.0), "margin"), (dict(queries="x"), "queries"),
                                          (dict(merge="x"), "merge"), (dict(search="x"), "search")])
def test_bad_options_name_the_option(options, key):
    with pytest.raises(ConfigError, match=f"mining {key}"):
        MineOptions(**options).check()


def test_embedding_cache_is_reused(tmp_path):
    items, encoder = _fixture()
    mine_negatives(encoder, items, MineOptions(k=2, depth=6, cache_dir=str(tmp_path)))
    assert encoder.encoded
    encoder.encoded.clear()
    again, _ = mine_negatives(encoder, items, MineOptions(k=2, depth=6, cache_dir=str(tmp_path)))
    assert encoder.encoded == []
    assert _by_id(again)["a"].negatives["de"] == ["Berlin liegt in Deutschland.", "Der Rhein ist lang."]


# ----- the command -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.mark.parametrize("merge", ["existing-first", "replace"])
def test_cli_mines_into_canonical_jsonl(tmp_path, tiny_dir, capsys, merge):
    """MLQA dev fixture: two questions on one paragraph, whose in-paragraph sentence negatives
    include each other's answer sentence. Kept first (default), or replaced by mined ones."""
    out = tmp_path / "mined" / "mlqa-dev.jsonl"
    code = main(["mine", "--model", tiny_dir, "--data", f"mlqa:{FIX / 'mlqa'}", "--option", "split=dev",
                 "--out", str(out), "--k", "2", "--depth", "10", "--margin", "none", "--merge", merge,
                 "--fp32", "--threads", "1"])
    assert code == 0
    mined = read_parallel(out)            # canonical, validated
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert report["items"] == len(mined) == 2 and report["pairs"] == 4
    assert report["options"]["margin"] is None and report["options"]["merge"] == merge
    assert set(report["rejected"]) == set(RULES) and report["rejected"]["equal_text"] <= 4
    from mixlingual.data.registry import load_parallel
    source = load_parallel("mlqa", str(FIX / "mlqa"), split="dev")
    existing = sum(len(v) for i in source for v in i.negatives.values())
    for before, after in zip(source, mined):
        positives = {normalize_text(t) for t in before.positives.values()}
        for lang, negatives in after.negatives.items():
            if merge == "existing-first":
                assert negatives[:len(before.negatives.get(lang, []))] == before.negatives.get(lang, [])
            assert not {normalize_text(t) for t in negatives} & positives
    if merge == "existing-first":   # every other sentence of the paragraph is already a negative
        assert report["existing_kept"] == existing and report["rejected"]["already_negative"] == existing
        assert report["mined"] == 0 and report["rejected"]["equal_text"] == 4   # every list walked to its end
    else:                           # mined from the same pool instead: 2 per list
        assert report["existing_kept"] == 0 and report["mined"] == 8
    assert report["mined"] + report["existing_kept"] == sum(len(v) for i in mined for v in i.negatives.values())
    assert "mined" in capsys.readouterr().out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]   # atomic: no temp left


def test_cli_reads_canonical_jsonl_and_reports_bad_lines(tmp_path, tiny_dir, capsys):
    items, _ = _fixture()
    src = tmp_path / "train.jsonl"
    write_parallel(items, src)
    out = tmp_path / "out.jsonl"
    assert main(["mine", "--model", tiny_dir, "--data", str(src), "--out", str(out), "--k", "1",
                 "--depth", "3", "--fp32"]) == 0
    assert len(read_parallel(out)) == len(items)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(src.read_text().splitlines()[0] + "\n" + '{"id": "x", "queries": {"de": "q"}}\n')
    assert main(["mine", "--model", tiny_dir, "--data", str(bad), "--out", str(out), "--fp32"]) == 2
    assert "bad.jsonl:2: field 'positives'" in capsys.readouterr().err
    assert main(["mine", "--model", tiny_dir, "--data", str(src), "--out", str(out), "--k", "9",
                 "--depth", "3"]) == 2
    assert "mining depth" in capsys.readouterr().err


# ----- re-mining during training -----------------------------------------------------------
class _Crash(RuntimeError):
    pass


def _remine_config(tmp_path, out, *extra):
    from helpers_train import tiny_run_overrides

    from mixlingual.training.config import load_config

    return load_config(None, tiny_run_overrides(tmp_path, steps=6, out=out) + [
        "data.hard_negatives=1", "data.remine_every=2",
        "data.mining={k: 2, depth: 8, margin: null, merge: mined-first}",
        "train.checkpoint_every=2", *extra])


def test_remining_during_training_resumes_exactly(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from mixlingual.training.tasks.text import TextRetrievalTask
    from mixlingual.training.loop import train

    torch.set_num_threads(1)
    train(_remine_config(tmp_path, "straight"))
    mined = sorted(p.name for p in (tmp_path / "straight" / "mined").glob("*.jsonl"))
    assert mined == ["step-00000002.jsonl", "step-00000004.jsonl"]   # not after the last step
    at4 = read_parallel(tmp_path / "straight" / "mined" / "step-00000004.jsonl")
    at2 = read_parallel(tmp_path / "straight" / "mined" / "step-00000002.jsonl")
    assert [i.negatives for i in at2] != [i.negatives for i in at4]  # the model moved: other negatives
    report = json.loads((tmp_path / "straight" / "mined" / "step-00000004.jsonl.report.json").read_text())
    assert report["step"] == 4 and report["mined"] > 0
    state = json.loads((tmp_path / "straight" / "checkpoints" / "step-00000004" / "state.json").read_text())
    assert state["trainer"]["mined"].endswith("step-00000004.jsonl")

    original, calls = TextRetrievalTask.loss, {"n": 0}

    def crashing(self, batch):
        calls["n"] += 1
        if calls["n"] == 6:   # step 6: the last checkpoint is step 4, taken after its re-mining
            raise _Crash()
        return original(self, batch)

    monkeypatch.setattr(TextRetrievalTask, "loss", crashing)
    with pytest.raises(_Crash):
        train(_remine_config(tmp_path, "resumed"))
    monkeypatch.setattr(TextRetrievalTask, "loss", original)
    train(_remine_config(tmp_path, "resumed"), resume=True)
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("extra, message", [
    (["data.mining={k: 0}"], "data.mining.k: must be"),
    (["data.mining={kk: 3}"], "unknown config key 'data.mining.kk'"),
    (["data.mining={margin: -1}"], "data.mining.margin"),
    (["data.hard_negatives=0"], "data.remine_every: mined negatives are only used with data.hard_negatives"),
    (["data.remine_every=-1"], "data.remine_every: must be >= 0"),
])
def test_remine_config_errors_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _remine_config(tmp_path, "bad", *extra)
