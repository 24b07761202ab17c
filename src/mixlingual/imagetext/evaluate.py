"""Image-text retrieval evaluation per caption language, with language bias and CLIPScore.

Settings (all exact search over the whole set, ranks from `mixlingual.evaluation.search.score_relevant`,
metrics from `mixlingual.evaluation.metrics`, so ties and definitions match text evaluation):

* ``t2i`` - text to image, per caption language L: each caption in L queries all images; the
  image it describes is relevant. R@1/5/10, MRR@10.
* ``i2t`` - image to text, per caption language L: each image queries the captions in L; any
  caption of that image is relevant (success@k, as in Flickr30K / XM3600 practice).
* ``i2t_multi`` - image to text against the pool of captions in every language; language bias
  is the rank distance: per image, the spread (max - min) over caption languages of the best
  rank of one of its captions in that language (0 = the model ranks its captions in all
  languages alike). `best_rank` reports the mean best rank per language: which languages the
  model prefers.
* ``clipscore`` - reference-free alignment (Hessel et al. 2021): 2.5 * max(cos(image, caption), 0)
  per image and language, averaged.

Each setting's summary is the macro mean over languages. Per-query values (for paired tests)
come back under `per_query` and are written to per_query.jsonl, not to metrics.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixlingual.io import atomic_open, write_json_atomic
from mixlingual.imagetext.data import ImageCaptionItem, ImageStore
from mixlingual.evaluation.metrics import macro_mean, mean_ignoring_nan, pad_ranks, rank_distance, reciprocal_rank, \
    success_at_k
from mixlingual.evaluation.search import Relevance, score_relevant

KS = (1, 5, 10)


def _rank_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    out = {f"r@{k}": success_at_k(ranks, k) for k in KS}
    out["mrr@10"] = reciprocal_rank(ranks, 10)
    return out


def _ranks(queries, candidates, relevant_lists, block_starts=(0,)):
    """(pool rank matrix (nq, max R), scoring result, relevance) for queries against candidates."""
    relevance = Relevance.from_lists(relevant_lists)
    result = score_relevant(queries, candidates, relevance, block_starts=block_starts)
    matrix = pad_ranks(relevance.rows, result.pool_ranks, len(queries))
    return matrix, result, relevance


def _caption_table(items, langs, per_image: int):
    """Captions grouped by language: lang -> (texts, owning image index)."""
    table = {}
    for lang in langs:
        texts, owners = [], []
        for i, item in enumerate(items):
            for caption in item.captions.get(lang, [])[:per_image]:
                texts.append(caption)
                owners.append(i)
        table[lang] = (texts, np.asarray(owners, dtype=np.int64))
    return table


def evaluate_image_text(model, items: list[ImageCaptionItem], *, langs=None, captions_per_image: int = 1,
                        store: ImageStore | None = None, out_dir=None, batch_size: int = 256) -> dict:
    """Evaluate `model` (an `ImageTextModel`) on image-caption `items`; see the module docstring.

    `captions_per_image` caps how many captions of each image and language are used (the first
    ones). With `out_dir`, writes metrics.json, per_query.jsonl and report.md there.
    """
    langs = sorted(langs or {lang for it in items for lang in it.languages})
    store = store or ImageStore(model.config.image_tower.image_size)
    image_vecs = model.encode_images(store.batch(items), batch_size=batch_size)
    table = _caption_table(items, langs, captions_per_image)
    text_vecs = {lang: model.encode_texts(texts, batch_size=batch_size) if texts else None
                 for lang, (texts, _) in table.items()}
    per_language = {"t2i": {}, "i2t": {}}
    clip = {}
    per_query = {"t2i": {}, "rank_distance": None}
    for lang in langs:
        texts, owners = table[lang]
        if not texts:
            continue
        t2i, _, _ = _ranks(text_vecs[lang], image_vecs, [[o] for o in owners])
        values = _rank_metrics(t2i)
        per_query["t2i"][lang] = {"image_ids": [items[o].id for o in owners], **values}
        per_language["t2i"][lang] = {m: mean_ignoring_nan(v) for m, v in values.items()}
        has_caption = np.unique(owners)
        caption_lists = [np.flatnonzero(owners == i) for i in has_caption]
        i2t, _, _ = _ranks(image_vecs[has_caption], text_vecs[lang], caption_lists)
        per_language["i2t"][lang] = {m: mean_ignoring_nan(v) for m, v in _rank_metrics(i2t).items()}
        cos = np.einsum("nd,nd->n", image_vecs[owners], text_vecs[lang])
        clip[lang] = float(np.mean(2.5 * np.maximum(cos, 0.0)))
    multi, best, distance = _multilingual(image_vecs, table, text_vecs, langs, len(items))
    per_query["rank_distance"] = {"image_ids": [it.id for it in items], "values": distance}
    metrics = {
        "benchmark": "image-text", "n_images": len(items), "languages": langs,
        "captions_per_image": captions_per_image,
        "settings": {s: {m: macro_mean({lang: v[m] for lang, v in per_language[s].items()})
                         for m in ("r@1", "r@5", "r@10", "mrr@10")} for s in ("t2i", "i2t")},
        "per_language": per_language,
        "rank_distance": {"mean": mean_ignoring_nan(distance)},
        "best_rank": best,
        "clipscore": {"mean": macro_mean(clip), "per_language": clip},
    }
    metrics["settings"]["i2t_multi"] = multi
    metrics["per_query"] = per_query
    if out_dir is not None:
        write_outputs(metrics, out_dir)
    return metrics


def _multilingual(image_vecs, table, text_vecs, langs, n_images):
    """Images against the pool of all captions: success@k and per-language best ranks."""
    present = [lang for lang in langs if table[lang][0]]
    pool = np.concatenate([text_vecs[lang] for lang in present])
    owners = np.concatenate([table[lang][1] for lang in present])
    lang_of = np.concatenate([np.full(len(table[lang][1]), j) for j, lang in enumerate(present)])
    relevant = [np.flatnonzero(owners == i) for i in range(n_images)]
    ranks, result, relevance = _ranks(image_vecs, pool, relevant)
    best = np.full((n_images, len(present)), np.nan)
    np.fmin.at(best, (relevance.rows, lang_of[relevance.indices]), result.pool_ranks.astype(float))
    summary = {m: mean_ignoring_nan(v) for m, v in _rank_metrics(ranks).items()}
    best_rank = {lang: mean_ignoring_nan(best[:, j]) for j, lang in enumerate(present)}
    return summary, best_rank, rank_distance(best)


def write_outputs(metrics: dict, out_dir) -> None:
    """metrics.json (without per-query values), per_query.jsonl and report.md, atomically."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "metrics.json", {k: v for k, v in metrics.items() if k != "per_query"})
    per_query = metrics["per_query"]
    with atomic_open(out / "per_query.jsonl", "w") as handle:
        for lang, rows in per_query["t2i"].items():
            for i, image_id in enumerate(rows["image_ids"]):
                handle.write(json.dumps({"setting": "t2i", "lang": lang, "image": image_id,
                                         **{m: float(rows[m][i]) for m in rows if m != "image_ids"}}) + "\n")
        rd = per_query["rank_distance"]
        for image_id, value in zip(rd["image_ids"], rd["values"]):
            handle.write(json.dumps({"setting": "rank_distance", "image": image_id,
                                     "value": None if np.isnan(value) else float(value)}) + "\n")
    from mixlingual.imagetext.report import write_report

    write_report(metrics, out)
