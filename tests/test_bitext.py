"""Bitext evaluation: exact accuracies with an oracle encoder, pool ranks vs the reference ranks."""

import json

import numpy as np
import pytest

from bitext_fixtures import CharNgramEncoder, GroupOracleEncoder, make_ntrex_dir, make_sib_dir
from mixlingual.evaluation import metrics
from mixlingual.data import ntrex, sib200
from mixlingual.errors import ConfigError
from mixlingual.experiments.transfer.bitext import evaluate_bitext, pool_ranks, sentence_table


def test_oracle_is_perfect_and_a_broken_language_scores_zero(tmp_path):
    col = sib200.load_collection(make_sib_dir(tmp_path / "sib"))
    result = evaluate_bitext(GroupOracleEncoder(swap=("zul_Latn",)), col, pivot="en", out_dir=tmp_path / "out")
    per = result["per_language"]
    assert result["pivot"] == "eng_Latn" and set(per) == {"deu_Latn", "fra_Latn", "zul_Latn"}
    assert per["fra_Latn"]["xx->pivot acc"] == per["deu_Latn"]["pivot->xx acc"] == 1.0
    assert per["zul_Latn"]["xx->pivot acc"] == 0.0 and per["zul_Latn"]["pivot->xx acc"] == 0.0
    assert result["settings"]["xx->pivot"]["acc"] == pytest.approx(2 / 3)
    # Zulu is not among XLM-R's pretraining languages; French and German are
    assert result["groups"]["seen"]["unseen"] == {**result["groups"]["seen"]["unseen"], "n_languages": 1, "xx->pivot acc": 0.0}
    assert result["groups"]["seen"]["pretrained"]["xx->pivot acc"] == 1.0
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert on_disk["per_language"]["zul_Latn"]["resource"] == per["zul_Latn"]["resource"]
    assert "| fra_Latn | French |" in (tmp_path / "out" / "bitext.md").read_text()
    assert (tmp_path / "out" / "bitext_groups.png").stat().st_size > 1000


def test_pool_metrics_with_oracle(tmp_path):
    col = sib200.load_collection(make_sib_dir(tmp_path / "sib"))
    result = evaluate_bitext(GroupOracleEncoder(), col, pool_sentences=3)
    multi = result["settings"]["multi"]
    # every translation ties at score 1 ahead of all others: ranks 1..3, so AP = 1 and spread = 2
    assert multi["map"] == 1.0 and multi["rank_distance"] == 2.0 and multi["pool_languages"] == 4
    sampled = evaluate_bitext(GroupOracleEncoder(), col, pool_sentences=2, pool_langs=2, seed=3)
    assert sampled["settings"]["multi"]["pool_languages"] == 2
    assert sampled["settings"]["multi"]["pool_sentences"] == 2


def test_pool_ranks_equal_the_reference_dense_ranks():
    rng = np.random.default_rng(0)
    n_langs, n = 4, 6
    vectors = rng.integers(0, 3, size=(n_langs * n, 3)).astype(np.float32)   # many exact ties
    got = pool_ranks(vectors, n_langs)
    scores = vectors @ vectors.T
    for row in range(n_langs * n):
        keep = np.arange(n_langs * n) != row
        relevant = (np.arange(n_langs * n) % n == row % n)[keep]
        expected = metrics.relevant_ranks_dense(scores[row, keep][None], relevant[None])[0]
        assert np.array_equal(np.sort(got[row][~np.isnan(got[row])]), expected)


def test_works_on_ntrex_codes_and_char_ngrams(tmp_path):
    col = ntrex.load_collection(make_ntrex_dir(tmp_path / "ntrex"))
    result = evaluate_bitext(CharNgramEncoder(), col, pool_sentences=0, trained_langs=["de"])
    assert result["pivot"] == "eng" and result["settings"]["multi"] == {}
    assert result["per_language"]["deu"]["seen"] == "trained"
    assert 0.0 <= result["settings"]["xx->pivot"]["acc"] <= 1.0


def test_bad_options_and_conflicting_duplicates(tmp_path):
    col = sib200.load_collection(make_sib_dir(tmp_path / "sib"))
    with pytest.raises(ConfigError, match="pivot"):
        evaluate_bitext(GroupOracleEncoder(), col, pivot="jpn")
    with pytest.raises(ConfigError, match="unknown options"):
        evaluate_bitext(GroupOracleEncoder(), col, pool_size=3)
    col.queries[0].text = "something else"
    assert sentence_table(col)[1] == 1


@pytest.mark.slow
def test_evaluate_cli_dispatches_bitext_benchmarks(tmp_path, capsys):
    from helpers_models import make_tiny_model_dir
    from mixlingual.cli import main

    model = make_tiny_model_dir(tmp_path / "tiny")
    root = make_sib_dir(tmp_path / "sib")
    assert main(["evaluate", "--model", model, "--benchmark", "sib200-bitext", "--data", str(root),
                 "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["pivot"] == "eng_Latn" and set(saved["per_language"]) == {"deu_Latn", "fra_Latn", "zul_Latn"}
    assert "xx->pivot" in capsys.readouterr().out


@pytest.mark.slow
def test_bitext_cli_options_reach_the_evaluation(tmp_path):
    from helpers_models import make_tiny_model_dir
    from mixlingual.experiments.transfer import bitext_cli as bitext_report

    model = make_tiny_model_dir(tmp_path / "tiny")
    root = make_ntrex_dir(tmp_path / "ntrex")
    assert bitext_report.main(["--model", model, "--benchmark", "ntrex-bitext", "--data", str(root),
                               "--langs", "eng,deu", "--pool-sentences", "2", "--trained-langs", "de",
                               "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(saved["per_language"]) == ["deu"] and saved["per_language"]["deu"]["seen"] == "trained"
    assert saved["settings"]["multi"]["pool_sentences"] == 2


def test_max_sentences_cuts_every_language_and_the_pivot(tmp_path):
    col = sib200.load_collection(make_sib_dir(tmp_path / "sib"))
    result = evaluate_bitext(GroupOracleEncoder(), col, max_sentences=2, pool_sentences=5)
    assert {v["n"] for v in result["per_language"].values()} == {2}
    assert result["settings"]["multi"]["pool_sentences"] == 2
    with pytest.raises(ConfigError, match="max_sentences"):
        evaluate_bitext(GroupOracleEncoder(), col, max_sentences=0)


@pytest.mark.shared_data
def test_tatoeba_pairs_score_against_their_own_english_sides():
    from bitext_fixtures import shared_data_dir
    from mixlingual.data import registry

    root = shared_data_dir() / "tatoeba"
    if not root.is_dir():
        pytest.skip(f"shared data absent: {root}")
    col = registry.load_collection("tatoeba", root, langs=["deu", "fra"])
    result = evaluate_bitext(CharNgramEncoder(), col, max_sentences=50)
    assert result["pivot"] == "eng" and set(result["per_language"]) == {"deu", "fra"}
    assert result["settings"]["multi"] == {"skipped": "no sentence group is shared by the pooled languages"}
    assert 0.0 < result["per_language"]["fra"]["xx->pivot acc"] <= 1.0
