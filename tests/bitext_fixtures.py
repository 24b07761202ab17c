"""Tiny SIB-200 / NTREX-128 folders and a deterministic fake encoder for the bitext tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

SENTENCES = {  # index_id -> (topic, {lang: text})
    "7": ("travel", {"eng_Latn": "The river runs through the old city.", "fra_Latn": "La rivière traverse la vieille ville.",
                     "deu_Latn": "Der Fluss fließt durch die Altstadt.", "zul_Latn": "Umfula ugeleza edolobheni elidala."}),
    "12": ("sports", {"eng_Latn": "She won the race in record time.", "fra_Latn": "Elle a gagné la course en un temps record.",
                      "deu_Latn": "Sie gewann das Rennen in Rekordzeit.", "zul_Latn": "Uwine umjaho ngesikhathi esiqophile."}),
    "31": ("health", {"eng_Latn": "Drink water when it is \"hot\".", "fra_Latn": "Buvez de l'eau quand il fait \"chaud\".",
                      "deu_Latn": "Trinken Sie Wasser, wenn es \"heiß\" ist.", "zul_Latn": "Phuza amanzi uma kushisa."}),
}


def shared_data_dir() -> Path:
    return Path(os.environ.get("MIXLINGUAL_SHARED_DATA",
                               Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def make_sib_dir(root: Path, sentences=SENTENCES, splits=("dev",)) -> Path:
    """Write data/annotated/{lang}/{split}.tsv with every sentence in every split."""
    langs = sorted({lang for _, texts in sentences.values() for lang in texts})
    for lang in langs:
        folder = root / "data" / "annotated" / lang
        folder.mkdir(parents=True, exist_ok=True)
        for split in splits:
            rows = ["index_id\tcategory\ttext"] + [f"{i}\t{topic}\t{texts[lang]}" for i, (topic, texts) in sentences.items()]
            (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (folder / "labels.txt").write_text("travel\nsports\nhealth\n", encoding="utf-8")
    return root


def make_ntrex_dir(root: Path) -> Path:
    """NTREX-128 layout with English source, two references, an English reference and an extra."""
    lines = {lang: [texts[code] for _, texts in SENTENCES.values()]
             for lang, code in (("eng", "eng_Latn"), ("fra", "fra_Latn"), ("deu", "deu_Latn"), ("eng-GB", "eng_Latn"))}
    (root / "NTREX-128").mkdir(parents=True)
    (root / "NTREX-additional").mkdir()
    (root / "NTREX-128" / "newstest2019-src.eng.txt").write_text("\n".join(lines["eng"]) + "\n", encoding="utf-8")
    for lang in ("fra", "deu", "eng-GB"):
        (root / "NTREX-128" / f"newstest2019-ref.{lang}.txt").write_text("\n".join(lines[lang]) + "\n", encoding="utf-8")
    (root / "NTREX-additional" / "newstest2019-ref.gsw-ZH.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (root / "DOCUMENT_IDS.tsv").write_text("doc1\ndoc1\ndoc2\n", encoding="utf-8")
    return root


class GroupOracleEncoder:
    """Embeds a text as the one-hot vector of the sentence id it belongs to (a perfect aligner).

    `swap` lists languages whose sentences get the *next* sentence's vector, so their
    translations are always wrong: tests can predict exact accuracies.
    """

    name = "group-oracle"

    def __init__(self, sentences=SENTENCES, swap=()):
        ids = list(sentences)
        self.vector_of = {}
        for k, (_, texts) in enumerate(sentences.values()):
            for lang, text in texts.items():
                target = (k + 1) % len(ids) if lang in swap else k
                self.vector_of[text] = target
        self.dim = len(ids)

    def encode(self, texts, kind="query", batch_size=64, show_progress=None):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            out[i, self.vector_of[text]] = 1.0
        return out


class CharNgramEncoder:
    """Hashed character-trigram counts (L2-normalized): a deterministic, model-free encoder."""

    name = "char-ngrams"

    def __init__(self, dim: int = 128):
        self.dim = dim

    def encode(self, texts, kind="query", batch_size=64, show_progress=None):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for j in range(len(padded) - 2):
                out[i, int(hashlib.md5(padded[j:j + 3].encode()).hexdigest()[:8], 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
