"""`mixlingual robustness` and `mixlingual attack` on a tiny model: `--data-option` reaches the loader."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

torch = pytest.importorskip("torch")

CHOSEN_GROUPS = {"q2.0", "q2.1", "q3.0", "q3.1"}   # articles 2-3 of the fixture


def write_xquad_r(folder: Path, n_articles: int = 4, per_article: int = 2) -> Path:
    """A two-language XQuAD-R folder: `n_articles` articles of `per_article` one-question paragraphs."""
    def paragraph(a, p, lang):
        text = f"The river {a} is big. The city {p} is old in {lang}."
        cut = text.index(". ") + 1
        return {"context": text, "sentences": [text[:cut], text[cut + 1:]],
                "sentence_breaks": [[0, cut], [cut + 1, len(text)]],
                "qas": [{"id": f"q{a}.{p}", "question": f"Where is the river {a} and the city {p}?",
                         "answers": [{"text": "x", "answer_start": 0}]}]}

    folder.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        data = {"data": [{"title": f"t{a}", "paragraphs": [paragraph(a, p, lang) for p in range(per_article)]}
                         for a in range(n_articles)]}
        (folder / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    from helpers_models import make_tiny_model_dir

    root = tmp_path_factory.mktemp("robust-data-option")
    return root, make_tiny_model_dir(root / "model"), write_xquad_r(root / "xquad-r")


def test_robustness_data_option_reaches_the_loader(tiny, capsys):
    from mixlingual.cli import main
    from mixlingual.experiments.robustness.run import read_jsonl

    root, model, data = tiny
    base = ["robustness", "--model", model, "--benchmark", "xquad-r", "--data", str(data), "--fp32",
            "--perturb", "case:1"]
    assert main(base + ["--data-option", "articles=2-3", "--out", str(root / "rob")]) == 0
    for folder in ("clean", "case-1"):
        rows = read_jsonl(root / "rob" / folder / "per_query.jsonl")
        assert {r["group"] for r in rows} == CHOSEN_GROUPS, folder
    capsys.readouterr()
    assert main(base + ["--data-option", "artcles=2-3", "--out", str(root / "bad")]) == 2
    assert "--data-option artcles: the xquad-r loader has no option 'artcles'" in capsys.readouterr().err
    assert main(["robustness", "--clean", str(root / "rob" / "clean"), "--perturbed", str(root / "rob" / "case-1"),
                 "--data-option", "articles=0", "--out", str(root / "cmp")]) == 2
    assert "--data-option applies to --model runs" in capsys.readouterr().err


def test_attack_data_option_reaches_the_loader(tiny, capsys):
    from mixlingual.cli import main

    root, model, data = tiny
    base = ["attack", "--model", model, "--benchmark", "xquad-r", "--data", str(data), "--fp32", "--budget", "1"]
    assert main(base + ["--data-option", "articles=2-3", "--out", str(root / "attack")]) == 0
    report = json.loads((root / "attack" / "attack.json").read_text())
    assert {q["query_id"].split(":", 1)[1] for q in report["queries"]} == CHOSEN_GROUPS and report["summary"]["n"] == 8
    assert report["data_options"] == {"articles": "2-3"}
    capsys.readouterr()
    assert main(base + ["--data-option", "articles=0-9", "--out", str(root / "past")]) == 2
    assert "field 'articles'" in capsys.readouterr().err and not (root / "past").exists()


def test_summary_of_folders_written_by_the_real_commands(tiny, tmp_path):
    """robustness --model and attack --out DIR/attack for two seeds of two recipes, then --summarize."""
    from helpers_models import make_tiny_model_dir

    from mixlingual.cli import main

    root, _, data = tiny
    common = ["--benchmark", "xquad-r", "--data", str(data), "--data-option", "articles=2-3", "--fp32"]
    specs = []
    for recipe, model_seeds in (("a", (0, 1)), ("b", (2, 3))):
        for k, model_seed in enumerate(model_seeds):
            model = make_tiny_model_dir(tmp_path / f"model-{model_seed}", seed=model_seed)
            out = tmp_path / f"{recipe}__seed={k}"
            assert main(["robustness", "--model", model, *common, "--perturb", "word-dropout:0.5",
                         "--out", str(out)]) == 0
            assert main(["attack", "--model", model, *common, "--budget", "2", "--out", str(out / "attack")]) == 0
            specs.append(f"{recipe}={out}")
    assert main(["robustness", "--summarize", *specs, "--baseline", "a", "--n-resamples", "100",
                 "--out", str(tmp_path / "summary")]) == 0
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    assert list(summary["conditions"]) == ["word-dropout-0.5", "attack"]
    assert summary["recipes"]["b"]["seeds"] == [0, 1]
    headline = [r for r in summary["drops"] if (r["condition"], r["setting"], r["metric"], r["lang"])
                == ("word-dropout-0.5", "multi", "map", "all")]
    assert {r["recipe"] for r in headline} == {"a", "b"}
    assert all(r["n_seeds"] == 2 and r["n_groups"] == len(CHOSEN_GROUPS) and r["n_rows"] == 8 for r in headline)
    attack = [r for r in summary["drops"] if r["condition"] == "attack" and r["metric"] == "mrr@10" and r["lang"] == "all"]
    assert len(attack) == 2 and all(r["drop"] <= 0 for r in attack)   # the attack never improves a rank
    assert {(r["recipe"], r["baseline"]) for r in summary["differences"]} == {("b", "a")}
    assert (tmp_path / "summary" / "robustness.png").stat().st_size > 0
