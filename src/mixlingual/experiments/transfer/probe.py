"""Zero-shot transfer probes on frozen embeddings (`mixlingual probe`).

A linear classifier (scikit-learn LogisticRegression on standardized features) is trained on
English embeddings only and applied unchanged to every other language: how well the labels
transfer measures how language-agnostic the embedding space is. Tasks (`tasks.py`):

* `sib200-topic`: 7-way topic of a sentence; features = the sentence embedding.
* `xnli`: 3-way NLI of a (premise, hypothesis) pair; features = [u, v, |u-v|, u*v]
  (Conneau et al. 2017, InferSent) of the premise (u) and hypothesis (v) embeddings.

Accuracy and macro-F1 per language, then means per resource level / script / seen status.
Writes `metrics.json`, `probe.md` and `probe_groups.png` into `--out`::

    mixlingual probe --task sib200-topic --model embedded:multilingual-e5-small --out runs/probe-sib
    mixlingual probe --task xnli --model ./my-model --data ../shared/data/xnli-dev --out runs/probe-xnli
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data import languages as lang_table
from mixlingual.errors import ConfigError
from mixlingual.experiments.transfer.bitext import encode_texts
from mixlingual.io import write_atomic, write_json_atomic
from mixlingual.experiments.transfer.tasks import TASKS, ProbeData

METRICS = ("accuracy", "macro_f1")


@dataclass
class ProbeConfig:
    """Classifier and bookkeeping options of one probe run."""

    C: float = 1.0                 # inverse L2 strength of LogisticRegression
    max_iter: int = 2000
    seed: int = 0
    batch_size: int = 64
    kind: str = "sentence"         # query prefix (E5 for classification), whole text, not cut at 64
    trained_langs: list[str] = field(default_factory=list)
    pretraining: str = "xlmr"
    cache_dir: str | None = None   # on-disk embedding cache (shared with bitext runs of the same model)


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[u, v, |u - v|, u * v] per row."""
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def featurize(encoder, examples: list, config: ProbeConfig) -> np.ndarray:
    """Embeddings of texts, or pair features of (premise, hypothesis) tuples (each text encoded once)."""
    if not examples:
        return np.zeros((0, 0), np.float32)
    if not isinstance(examples[0], tuple):
        return encode_texts(encoder, list(examples), config.kind, config.batch_size, config.cache_dir)
    unique = list(dict.fromkeys(t for pair in examples for t in pair))
    vectors = encode_texts(encoder, unique, config.kind, config.batch_size, config.cache_dir)
    row = {text: i for i, text in enumerate(unique)}
    return pair_features(vectors[[row[p] for p, _ in examples]], vectors[[row[h] for _, h in examples]])


def run_probe(encoder, data: ProbeData, config: ProbeConfig | None = None) -> dict:
    """Train on the English features, evaluate per language; the metrics.json structure."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    config = config or ProbeConfig()
    if len(set(data.train_y)) < 2:
        raise ConfigError(f"probe {data.task}: the training split needs at least two labels")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=config.C, max_iter=config.max_iter,
                                                                    random_state=config.seed))
    classifier.fit(featurize(encoder, data.train_x, config), data.train_y)
    labels = sorted(set(data.train_y))
    per_language = {}
    # one encoder call for every language: the encoder batches by length, the cache is read once
    everything = [x for examples in data.eval_x.values() for x in examples]
    all_predicted = classifier.predict(featurize(encoder, everything, config)) if everything else []
    start = 0
    for lang, examples in data.eval_x.items():
        predicted, start = all_predicted[start:start + len(examples)], start + len(examples)
        gold = data.eval_y[lang]
        row = lang_table.table().get(lang)
        per_language[lang] = {
            "name": row.name if row else lang, "script": lang_table.script_of(lang),
            "resource": lang_table.resource_level(lang),
            "seen": lang_table.seen_status(lang, config.trained_langs, config.pretraining), "n": len(gold),
            "accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        }
    groups = {}
    for by in ("resource", "script", "seen"):
        grouped = lang_table.group_languages(per_language, by, trained=config.trained_langs,
                                             pretraining=config.pretraining)
        groups[by] = {name: {"n_languages": len(members),
                             **{m: float(np.mean([per_language[x][m] for x in members])) for m in METRICS}}
                      for name, members in grouped.items()}
    pivot = per_language.get(data.pivot, {})
    others = [v for k, v in per_language.items() if k != data.pivot]
    return {
        "task": data.task, "pivot": data.pivot, "encoder": getattr(encoder, "name", type(encoder).__name__),
        "config": asdict(config), "data": data.meta, "labels": labels, "train_examples": len(data.train_y),
        "summary": {"pivot": {m: pivot.get(m) for m in METRICS},
                    "zero_shot_mean": {m: float(np.mean([v[m] for v in others])) if others else None for m in METRICS}},
        "per_language": per_language, "groups": groups,
    }


def markdown(result: dict) -> str:
    """Summary, group tables and per-language rows (sorted by resource level, then accuracy)."""
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731
    pivot, zero_shot = result["summary"]["pivot"], result["summary"]["zero_shot_mean"]
    n_zero_shot = sum(lang != result["pivot"] for lang in result["per_language"])
    lines = [f"# Probe {result['task']} (train: {result['pivot']} only; encoder {result['encoder']})", "",
             f"- {result['pivot']} (in-language): accuracy {pct(pivot['accuracy'])}, "
             f"macro-F1 {pct(pivot['macro_f1'])}",
             f"- zero-shot mean over {n_zero_shot} languages: accuracy {pct(zero_shot['accuracy'])}, "
             f"macro-F1 {pct(zero_shot['macro_f1'])}"]
    for by, groups in result["groups"].items():
        lines += ["", f"## By {by}", "", "| group | languages | accuracy | macro-F1 |", "|---|---|---|---|"]
        lines += [f"| {g} | {v['n_languages']} | {pct(v['accuracy'])} | {pct(v['macro_f1'])} |"
                  for g, v in groups.items()]
    lines += ["", "## Per language", "", "| lang | name | script | resource | seen | n | accuracy | macro-F1 |",
              "|---|---|---|---|---|---|---|---|"]
    order = {"high": 0, "low": 1}
    rows = sorted(result["per_language"].items(), key=lambda kv: (order.get(kv[1]["resource"], 2), -kv[1]["accuracy"]))
    lines += [f"| {k} | {v['name']} | {v['script']} | {v['resource']} | {v['seen']} | {v['n']} | "
              f"{pct(v['accuracy'])} | {pct(v['macro_f1'])} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def plot_groups(result: dict, path: Path) -> None:
    """Bar chart of accuracy and macro-F1 per resource level and per seen status."""
    from mixlingual.evaluation.report import plot_group_bars

    plot_group_bars({by: result["groups"][by] for by in ("resource", "seen")},
                    [("accuracy", "accuracy"), ("macro_f1", "macro_f1")],
                    path, ylabel="%", title=result["task"])


def write_probe_report(result: dict, out_dir) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "metrics.json", result)
    write_atomic(out_dir / "probe.md", markdown(result))
    plot_groups(result, out_dir / "probe_groups.png")


def default_data_dir(task: str) -> Path:
    """`$MIXLINGUAL_SHARED_DATA/<folder>`, else `../shared/data/<folder>` from the working directory."""
    base = os.environ.get("MIXLINGUAL_SHARED_DATA", os.path.join("..", "shared", "data"))
    return Path(base) / TASKS[task][0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--model", required=True, help="model folder, HF id, embedded:NAME or preset alias "
                        "(me5-small, labse, xlmr-base, mbert, laser; see models.presets)")
    parser.add_argument("--data", default=None, help="dataset folder (default: ../shared/data/sib200 or xnli-dev)")
    parser.add_argument("--out", required=True, help="output folder (metrics.json, probe.md, probe_groups.png)")
    parser.add_argument("--langs", default=None, help="comma-separated evaluation languages (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="XNLI train/eval split and classifier seed")
    parser.add_argument("--train-fraction", type=float, default=0.5, help="XNLI: share of premises in probe-train")
    parser.add_argument("--max-eval-premises", type=int, default=None,
                        help="XNLI: evaluate the pairs of at most N premises per language (bounds cost)")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--trained-langs", default="", help="fine-tuning languages, for the seen/unseen grouping")
    parser.add_argument("--precision", default=None, help="encoder precision override (bf16|fp32|auto)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (shared with evaluate)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from mixlingual.models.load import load_encoder
    from mixlingual.experiments.transfer.tasks import load_sib200_topic, load_xnli

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    path = Path(args.data) if args.data else default_data_dir(args.task)
    if args.task == "xnli":
        data = load_xnli(path, args.langs, train_fraction=args.train_fraction, seed=args.seed,
                         max_eval_premises=args.max_eval_premises)
    else:
        data = load_sib200_topic(path, args.langs)
    encoder = load_encoder(args.model, **({"precision": args.precision} if args.precision else {}))
    config = ProbeConfig(C=args.C, seed=args.seed, batch_size=args.batch_size, cache_dir=args.cache_dir,
                         trained_langs=[x for x in args.trained_langs.split(",") if x])
    result = run_probe(encoder, data, config)
    write_probe_report(result, args.out)
    print(markdown(result).split("\n## By script")[0])
    return 0
