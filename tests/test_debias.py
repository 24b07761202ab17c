"""Language debiasing (`mixlingual debias`): the fit's maths, its file, where it is applied, its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers_models import make_tiny_model_dir
from mixlingual import cli
from mixlingual.data import jsonl
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError, ModelError
from mixlingual.models.debias import LanguageDebias

DIM = 16
LANGS = ("en", "de", "fr")


def _fake_embeddings(seed=0, n=40):
    """Unit vectors per language with a language-specific offset, for both sides."""
    rng = np.random.default_rng(seed)
    out = {}
    for side in ("query", "passage"):
        vectors, langs = [], []
        for i, lang in enumerate(LANGS):
            offset = np.zeros(DIM)
            offset[i] = 3.0 if side == "query" else -2.0
            block = rng.normal(size=(n, DIM)) + offset
            vectors.append(block / np.linalg.norm(block, axis=1, keepdims=True))
            langs += [lang] * n
        out[side] = (np.vstack(vectors).astype(np.float32), langs)
    return out


def test_centering_zeroes_each_language_mean_on_the_fit_set():
    emb = _fake_embeddings()
    fit = LanguageDebias.fit(emb, method="center", fingerprint="f", normalize=False)
    assert fit.languages == ["deu_Latn", "eng_Latn", "fra_Latn"]   # keyed canonically
    for side, (vectors, langs) in emb.items():
        before = np.stack([vectors[np.asarray(langs) == x].mean(0) for x in LANGS])
        centered = fit.apply(vectors, langs, side)
        after = np.stack([centered[np.asarray(langs) == x].mean(0) for x in LANGS])
        assert np.abs(before).max() > 0.3 and np.abs(after).max() < 1e-5
    renormalized = LanguageDebias.fit(emb, method="center", fingerprint="f").apply(*emb["query"], "query")
    assert np.allclose(np.linalg.norm(renormalized, axis=1), 1, atol=1e-5)


def test_projection_is_orthogonal_to_the_removed_span():
    emb = _fake_embeddings()
    fit = LanguageDebias.fit(emb, method="project", fingerprint="f")
    for side in ("query", "passage"):
        side_fit = fit.sides[side]
        assert side_fit.rank == len(LANGS) - 1   # differences from the mean of 3 means span 2 dimensions
        differences = side_fit.means - side_fit.means.mean(0)
        projected = fit.apply(emb[side][0], None, side)   # no language needed
        assert np.abs(projected @ side_fit.basis.T).max() < 1e-5
        assert np.abs(projected @ differences.T).max() < 1e-5
        assert np.allclose(np.linalg.norm(projected, axis=1), 1, atol=1e-5)
    assert not np.allclose(fit.sides["query"].basis, fit.sides["passage"].basis)   # sides fitted apart


def test_file_round_trips(tmp_path):
    emb = _fake_embeddings()
    for method in ("center", "project"):
        fit = LanguageDebias.fit(emb, method=method, fingerprint="abc", model="m", corpus={"data": "x:y"},
                                 text_ids={"query": np.array([3, 1], np.int64), "passage": np.array([7], np.int64)})
        path = tmp_path / f"{method}.safetensors"
        fit.save(path)
        back = LanguageDebias.load(path)
        assert (back.method, back.languages, back.fingerprint, back.corpus) == (method, fit.languages, "abc",
                                                                                {"data": "x:y"})
        assert back.describe()["counts"] == fit.describe()["counts"]
        assert np.array_equal(back.sides["query"].text_ids, [3, 1])
        vectors, langs = emb["passage"]
        assert np.array_equal(back.apply(vectors, langs, "passage"), fit.apply(vectors, langs, "passage"))
        if method == "project":
            assert json.loads((tmp_path / "project.safetensors.json").read_text())["rank"] == {"query": 2, "passage": 2}


def test_missing_language_errors_or_falls_back():
    emb = _fake_embeddings()
    fit = LanguageDebias.fit(emb, method="center", fingerprint="f", normalize=False)
    vectors = emb["query"][0][:2]
    with pytest.raises(ConfigError, match="no mean for language sw") as err:
        fit.apply(vectors, "sw", "query")
    assert "\n" not in str(err.value)
    fallback = fit.apply(vectors, "sw", "query", fallback=True)
    assert np.allclose(fallback, vectors - fit.sides["query"].means.mean(0), atol=1e-6)


def test_other_weights_are_refused():
    fit = LanguageDebias.fit(_fake_embeddings(), method="center", fingerprint="aaaa", model="a")
    with pytest.raises(ModelError, match="fitted on other weights"):
        fit.check_model("bbbb", "b")


# ---------------------------------------------------------------------- end to end with a tiny model
SENTENCES = {
    "g1": ("what is the capital of france", "paris is the capital of france"),
    "g2": ("where is the big river", "the big river is in germany"),
    "g3": ("who was the first dog", "the first dog was a small red dog"),
    "g4": ("what is the old book", "the old book is blue"),
}


def _collection(name, groups, suffixes=(("en", ""), ("de", " in berlin"))) -> Collection:
    queries, cands = [], []
    for lang, suffix in suffixes:
        for g in groups:
            question, answer = SENTENCES[g]
            queries.append(Query(f"{lang}-{g}", lang, question + suffix, g))
            cands.append(Candidate(f"{lang}-{g}-s", lang, answer + suffix, (g,)))
    return Collection(name, queries, cands)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("debias")
    model = make_tiny_model_dir(root / "model")
    jsonl.write_collection(_collection("fit", ["g1", "g2"]), root / "fit.jsonl")
    jsonl.write_collection(_collection("eval", ["g3", "g4"]), root / "eval.jsonl")
    for method in ("center", "project"):
        assert cli.main(["debias", "fit", "--model", model, "--data", f"jsonl:{root / 'fit.jsonl'}", "--method", method,
                         "--eval", f"jsonl:{root / 'eval.jsonl'}", "--fp32", "--out", str(root / f"{method}.st")]) == 0
    return root, model


def _one_line_error(capsys, argv) -> str:
    """The CLI's error for `argv`: exit status 2 and one line (progress bars aside)."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and lines[0].startswith(f"mixlingual {argv[0]}: error: "), err
    return lines[0]


def test_evaluate_applies_the_fit_and_records_it(setup):
    root, model = setup
    base = ["evaluate", "--model", model, "--benchmark", "jsonl", "--data", str(root / "eval.jsonl"), "--fp32",
            "--cache-dir", str(root / "cache")]
    assert cli.main(base + ["--out", str(root / "plain")]) == 0
    assert cli.main(base + ["--out", str(root / "centered"), "--debias", str(root / "center.st")]) == 0
    plain = json.loads((root / "plain" / "metrics.json").read_text())
    centered = json.loads((root / "centered" / "metrics.json").read_text())
    assert "debias" not in plain
    info = centered["debias"]
    assert info["method"] == "center" and info["fallback"] == [] and info["corpus"]["data"].startswith("jsonl:")
    assert info["overlap"]["query"]["overlapping"] == 0
    assert plain["fingerprint"] == centered["fingerprint"]   # same cache key: the fit reuses the embeddings
    # the scores changed (the tiny collection ranks perfectly either way)
    assert (root / "plain" / "runs" / "multi.trec").read_text() != (root / "centered" / "runs" / "multi.trec").read_text()


def test_encode_with_center_and_project(setup, tmp_path):
    root, model = setup
    texts = tmp_path / "t.txt"
    texts.write_text("the city of paris\nthe big river\n")
    assert cli.main(["encode", "--model", model, "--kind", "sentence", "--input", str(texts), "--fp32",
                     "--out", str(tmp_path / "plain.npy")]) == 0
    assert cli.main(["encode", "--model", model, "--kind", "sentence", "--input", str(texts), "--fp32",
                     "--debias", str(root / "center.st"), "--lang", "de", "--out", str(tmp_path / "c.npy")]) == 0
    plain, centered = np.load(tmp_path / "plain.npy"), np.load(tmp_path / "c.npy")
    fit = LanguageDebias.load(root / "center.st")
    assert np.allclose(centered, fit.apply(plain, "de", "query"), atol=1e-6)   # sentence -> query side
    sidecar = json.loads((tmp_path / "c.npy.json").read_text())
    assert sidecar["debias"]["method"] == "center" and sidecar["debias"]["lang"] == "de"


def test_one_line_errors(setup, tmp_path, capsys):
    root, model = setup
    texts = tmp_path / "t.txt"
    texts.write_text("the city of paris\n")
    encode = ["encode", "--model", model, "--kind", "query", "--input", str(texts), "--fp32",
              "--out", str(tmp_path / "o.npy")]
    err = _one_line_error(capsys, encode + ["--debias", str(root / "center.st"), "--lang", "sw"])
    assert "no mean for language sw" in err and "--debias-fallback" in err
    assert cli.main(encode + ["--debias", str(root / "center.st"), "--lang", "sw", "--debias-fallback"]) == 0
    assert json.loads((tmp_path / "o.npy.json").read_text())["debias"]["fallback"] == ["sw"]
    other = make_tiny_model_dir(tmp_path / "other", seed=1)
    err = _one_line_error(capsys, ["encode", "--model", other, "--kind", "query", "--input", str(texts),
                                   "--debias", str(root / "project.st"), "--out", str(tmp_path / "o.npy")])
    assert "fitted on other weights" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    err = _one_line_error(capsys, ["debias", "fit", "--model", model, "--data", f"jsonl:{empty}",
                                   "--out", str(tmp_path / "e.st")])
    assert "empty.jsonl" in err
    err = _one_line_error(capsys, ["debias", "fit", "--model", model, "--data", f"jsonl:{root / 'fit.jsonl'}",
                                   "--languages", "fr", "--out", str(tmp_path / "e.st")])
    assert "no text" in err and "fr" in err


def test_fit_corpus_overlapping_the_evaluated_collection_is_refused(setup, capsys):
    root, model = setup
    err = _one_line_error(capsys, ["debias", "fit", "--model", model, "--data", f"jsonl:{root / 'eval.jsonl'}",
                                   "--eval", f"jsonl:{root / 'eval.jsonl'}", "--out", str(root / "leak.st")])
    assert "overlaps the evaluated collection" in err
    err = _one_line_error(capsys, ["evaluate", "--model", model, "--benchmark", "jsonl", "--data",
                                   str(root / "fit.jsonl"), "--debias", str(root / "center.st"),
                                   "--out", str(root / "leak-eval")])
    assert "overlaps the evaluated collection" in err


def test_weights_fingerprint_ignores_precision(setup):
    from mixlingual.models.debias import weights_fingerprint
    from mixlingual.models.encoder import BiEncoder

    _, model = setup
    bf16, fp32 = BiEncoder.from_pretrained(model, precision="bf16"), BiEncoder.from_pretrained(model, precision="fp32")
    assert bf16.fingerprint() != fp32.fingerprint()
    assert weights_fingerprint(bf16) == weights_fingerprint(fp32)


@pytest.mark.parametrize("method", ["project", "center"])
def test_export_reproduces_encode_debias_in_sentence_transformers(setup, tmp_path, method):
    from sentence_transformers import SentenceTransformer

    from mixlingual.models.encoder import BiEncoder

    root, model = setup
    out = tmp_path / "exported"
    assert cli.main(["debias", "export", "--model", model, "--fp32", "--debias", str(root / f"{method}.st"),
                     "--out", str(out)]) == 0
    encoder = BiEncoder.from_pretrained(model, precision="fp32")
    fit = LanguageDebias.load(root / f"{method}.st")
    queries = ["what is the capital of germany", "the old dog in berlin"]
    passages = ["paris is a city", "the river is blue"]
    # project: standard modules only; center: our module, which sentence-transformers imports on trust
    st = SentenceTransformer(str(out), local_files_only=True, trust_remote_code=method == "center")
    kwargs = {"language": "de"} if method == "center" else {}
    got_q, got_p = st.encode_query(queries, **kwargs), st.encode_document(passages, **kwargs)
    want_q = fit.apply(encoder.encode(queries, kind="query"), "de", "query")
    want_p = fit.apply(encoder.encode(passages, kind="passage"), "de", "passage")
    assert (got_q * want_q).sum(1).min() >= 0.9999 and (got_p * want_p).sum(1).min() >= 0.9999
    plain = encoder.encode(queries, kind="query")
    assert (plain * want_q).sum(1).min() < 0.9999   # the fit changed them: the check above can fail
    if method == "project":   # mixlingual commands load the folder and apply the same fit
        assert cli.main(["evaluate", "--model", str(out), "--benchmark", "jsonl", "--data",
                         str(root / "eval.jsonl"), "--fp32", "--out", str(tmp_path / "ev")]) == 0
        assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["settings"]["mono"]["map"] is not None


def test_robustness_and_attack_apply_the_fit(setup, tmp_path):
    root, model = setup
    data = ["--model", model, "--benchmark", "jsonl", "--data", str(root / "eval.jsonl"), "--fp32",
            "--debias", str(root / "center.st")]
    assert cli.main(["robustness", *data, "--perturb", "case:1", "--out", str(tmp_path / "rob")]) == 0
    for folder in ("clean", "case-1"):
        metrics = json.loads((tmp_path / "rob" / folder / "metrics.json").read_text())
        assert metrics["debias"]["method"] == "center", folder
    assert cli.main(["attack", *data, "--budget", "1", "--out", str(tmp_path / "attack")]) == 0
    report = json.loads((tmp_path / "attack" / "attack.json").read_text())
    assert report["debias"]["file"].endswith("center.st") and report["summary"]["n"] == 4


def test_sweep_eval_entry_fits_per_cell_before_evaluating(tmp_path):
    import argparse

    from test_sweep import FakeRunner

    from mixlingual.experiments.sweep import plan as sweep

    class Runner(FakeRunner):
        def __call__(self, argv, log_path):
            if argv[3] == "debias":   # plays `mixlingual debias fit`: the file the evaluation then reads
                self.calls.append(argv)
                out = argv[argv.index("--out") + 1]
                for path in (out, out + ".json"):
                    open(path, "w").close()
                return 0
            return super().__call__(argv, log_path)

    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"sweep:\n  base_config: {base}\n  seeds: 1\n  recipes:\n    hybrid: {{sampling.alpha: 0.5}}\n"
                    "  eval:\n    - benchmark: dev=xquad-r:/d\n      options: {articles: 12-23}\n"
                    "      debias: {fit: 'sib200-bitext:/s', options: {split: train+dev}, method: project, "
                    "max_per_language: 300}\n")
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    runner = Runner()
    args = parser.parse_args([str(spec), "--out", str(tmp_path / "sw"), "--eval-arg=--bf16",
                              "--eval-arg=--threads=1", "--eval-arg=--batch-size", "--eval-arg=32"])
    assert sweep.run_sweep(args, runner) == 0
    assert [c[3] for c in runner.calls] == ["train", "debias", "evaluate"]
    _, fit, evaluate = runner.calls
    model = evaluate[evaluate.index("--model") + 1]
    assert fit[fit.index("--model") + 1] == model and fit[4] == "fit"
    for pair in (["--data", "sib200-bitext:/s"], ["-o", "split=train+dev"], ["--method", "project"],
                 ["--eval", "xquad-r:/d"], ["--eval-option", "articles=12-23"], ["--max-per-language", "300"]):
        assert fit[fit.index(pair[0]) + 1] == pair[1], pair
    assert "--bf16" in fit and fit[fit.index("--cache-dir") + 1] == str(tmp_path / "sw" / "debias-cache")
    # the fit encodes as the evaluation does, whichever way a runtime flag was written
    assert "--threads=1" in fit and fit[fit.index("--batch-size") + 1] == "32"
    assert evaluate[evaluate.index("--debias") + 1] == fit[fit.index("--out") + 1]
    spec.write_text(spec.read_text().replace("method: project", "method: whiten"))
    with pytest.raises(ConfigError, match="debias.method must be center or project"):
        sweep.run_sweep(parser.parse_args([str(spec), "--out", str(tmp_path / "sw2")]), Runner())


def test_sample_size_study_writes_every_draw_and_a_table(setup, tmp_path):
    root, model = setup
    assert cli.main(["debias", "sample-size", "--model", model, "--data", f"jsonl:{root / 'fit.jsonl'}",
                     "--eval", f"jsonl:{root / 'eval.jsonl'}", "--sizes", "1,2", "--draws", "2", "--fp32",
                     "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "study")]) == 0
    report = json.loads((tmp_path / "study" / "sample_size.json").read_text())
    assert list(report["sizes"]) == ["1", "2"] and report["sizes"]["1"]["texts_per_language"] == "1"
    assert [r["draw"] for r in report["sizes"]["2"]["runs"]] == [0, 1]
    assert set(report["sizes"]["1"]["summary"]) == {"mono map", "cross map", "multi map", "rank distance"}
    table = (tmp_path / "study" / "sample_size.md").read_text()
    assert "| none (no debiasing) |" in table and "| 2 (got 2) |" in table
