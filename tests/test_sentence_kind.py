"""kind="sentence": symmetric sentence tasks (bitext, probes) encode the whole sentence.

Bitext and probes used to encode every sentence as a query, cut at the query length (64 tokens):
FLORES sentences in Tibetan or Yoruba often tokenize longer, so translations that differ only
after token 64 got the same vector. The fixture here is two sentences that share their first 70
tokens (one tiny-vocabulary word = one token) and differ only after that.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from bitext_fixtures import make_sib_dir
from helpers_models import make_tiny_model_dir
from mixlingual.data import sib200
from mixlingual.models.encoder import BiEncoder
from mixlingual.errors import MixlingualError
from mixlingual.experiments.transfer.bitext import evaluate_bitext
from mixlingual.experiments.transfer.probe import ProbeConfig, featurize

SHARED_HEAD = " ".join(["the city of the river"] * 14)          # 70 tokens, past the query length
LONG_A = f"{SHARED_HEAD} paris france first"
LONG_B = f"{SHARED_HEAD} tokyo japan last"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", max_length=128)


@pytest.fixture(scope="module")
def encoder(tiny_folder):
    return BiEncoder.from_pretrained(tiny_folder, precision="fp32")


def _same(vectors: np.ndarray) -> bool:
    return bool(np.allclose(vectors[0], vectors[1], atol=1e-6))


def test_fixture_differs_only_after_the_query_length(encoder):
    ids = encoder.tokenizer([LONG_A, LONG_B], add_special_tokens=False)["input_ids"]
    first_difference = next(i for i, (a, b) in enumerate(zip(*ids)) if a != b)
    assert first_difference >= encoder.config.max_length_query == 64
    assert _same(encoder.encode([LONG_A, LONG_B], kind="query"))


def test_sentence_kind_is_the_query_prefix_at_the_models_full_length(encoder):
    assert encoder.prefix("sentence") == encoder.config.query_prefix
    assert encoder.max_length("sentence") == encoder.max_model_length == 128
    assert encoder.max_length("query") == 64 and encoder.max_length("passage") == encoder.config.max_length_passage
    assert not _same(encoder.encode([LONG_A, LONG_B], kind="sentence"))
    short = ["the capital of france", "a big red dog"]
    assert np.allclose(encoder.encode(short, kind="sentence"), encoder.encode(short, kind="query"), atol=1e-6)
    assert not np.allclose(encoder.encode(short, kind="sentence"), encoder.encode(short, kind="passage"), atol=1e-6)
    with pytest.raises(MixlingualError, match="kind must be one of"):
        encoder.max_length("document")


def test_bitext_finds_translations_that_differ_only_after_token_64(encoder, tmp_path):
    sentences = {"1": ("travel", {"eng_Latn": LONG_A, "fra_Latn": LONG_A}),
                 "2": ("travel", {"eng_Latn": LONG_B, "fra_Latn": LONG_B})}
    collection = sib200.load_collection(make_sib_dir(tmp_path / "sib", sentences))
    result = evaluate_bitext(encoder, collection, pool_sentences=0)
    # cut at 64 tokens both candidates get one vector: a pessimistic tie, accuracy 0
    assert result["per_language"]["fra_Latn"]["xx->pivot acc"] == 1.0
    assert result["per_language"]["fra_Latn"]["pivot->xx acc"] == 1.0
    assert result["options"]["kind"] == "sentence"


def test_probe_features_see_the_whole_sentence(encoder):
    assert not _same(featurize(encoder, [LONG_A, LONG_B], ProbeConfig()))
    pairs = featurize(encoder, [(LONG_A, "the dog"), (LONG_B, "the dog")], ProbeConfig())
    assert not _same(pairs)


@pytest.mark.slow
def test_sentence_transformers_adapter_encodes_sentences_whole(tmp_path):
    pytest.importorskip("sentence_transformers")
    from mixlingual.integrations.st_encoder import SentenceTransformerAdapter

    folder = make_tiny_model_dir(tmp_path / "tiny", max_length=128)
    adapter = SentenceTransformerAdapter(folder, query_prefix="query: ", passage_prefix="passage: ",
                                         max_length_query=64, max_length_passage=64)
    assert _same(adapter.encode([LONG_A, LONG_B], kind="query"))
    assert not _same(adapter.encode([LONG_A, LONG_B], kind="sentence"))
    assert _same(adapter.encode([LONG_A, LONG_B], kind="query"))    # the query length is back


def test_encode_cli_writes_whole_sentences(tiny_folder, tmp_path):
    from mixlingual.cli import main

    source = tmp_path / "texts.txt"
    source.write_text(f"{LONG_A}\n{LONG_B}\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    assert main(["encode", "--model", tiny_folder, "--kind", "sentence", "--input", str(source),
                 "--out", str(out), "--fp32"]) == 0
    assert not _same(np.load(out))
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["kind"] == "sentence" and sidecar["prefix"] == "query: " and sidecar["max_length"] == 128
