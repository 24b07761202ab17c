"""Bitext retrieval: find a sentence's translation among the sentences of another language.

Works on any collection whose queries/candidates are sentences grouped by translation
(`sib200-bitext`, `ntrex-bitext`, `tatoeba`): the collection is first viewed as a table
language -> {group -> sentence}. For every language L (other than the pivot, English):

* `xx->pivot`: each L sentence retrieves among the pivot sentences of the groups L has;
  accuracy = top-1 is the aligned sentence (the Tatoeba / BUCC-style metric), plus mAP
  (= reciprocal rank with one relevant) and R@10;
* `pivot->xx`: the reverse direction;
* `multi` (pool): each sentence of a sampled subset retrieves among the same sentences in all
  pooled languages (itself removed); its translations are the relevant candidates, one per
  language. mAP over them, and rank distance (best minus worst rank of a translation) as the
  language-bias measure. The pool is quadratic (205 languages x N sentences), so it uses
  `pool_sentences` sentences (and optionally `pool_langs` languages) sampled with `seed`.

Per-language results are summarised by resource level, script and seen status
(`mixlingual.data.languages`). Ranks and metrics come from `mixlingual.evaluation.search` /
`mixlingual.evaluation.metrics`. With `out_dir`, `write_bitext_report` writes `metrics.json`,
`bitext.md` (group summaries, then one row per language sorted by resource level) and
`bitext_groups.png` (accuracy per group); `bitext_cli` is the command line.

One module on purpose: one experiment read top to bottom, from the sentence table through the
pair and pool metrics to its report, whose columns are the metrics computed above; ranks and
metrics themselves come from `evaluation.search` / `evaluation.metrics`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data import languages as lang_table
from mixlingual.evaluation import metrics as M
from mixlingual.data.records import Collection
from mixlingual.errors import ConfigError, DataError
from mixlingual.evaluation.search import Relevance, score_relevant
from mixlingual.io import write_atomic, write_json_atomic

PAIR_METRICS = ("acc", "map", "r@10")
GROUPINGS = ("resource", "script", "seen")


@dataclass
class BitextOptions:
    """What to evaluate and how much of the multilingual pool to build."""

    pivot: str = "eng"                 # any code the language table maps to the pivot's row
    langs: list[str] | None = None     # languages to evaluate (collection codes); None = all
    kind: str = "sentence"             # query prefix (E5 for symmetric tasks), whole sentence, not cut at 64
    batch_size: int = 64
    pool_sentences: int = 100          # sentences in the multilingual pool; 0 = no pool setting
    pool_langs: int | None = None      # languages in the pool (sampled, pivot kept); None = all
    seed: int = 0
    trained_langs: list[str] = field(default_factory=list)  # fine-tuning languages (for "seen")
    pretraining: str = "xlmr"          # key of languages.PRETRAINING
    cache_dir: str | None = None       # on-disk embedding cache (mixlingual.evaluation.embedding_cache)
    max_sentences: int | None = None   # per language: the first N sentences shared with the pivot


def sentence_table(collection: Collection) -> tuple[dict[str, dict[str, str]], int]:
    """lang -> {group -> text} from queries and candidates, and the number of conflicting duplicates.

    A (lang, group) seen twice with different text keeps the first text; the count of such
    conflicts is reported in the metrics, never dropped silently.
    """
    table: dict[str, dict[str, str]] = defaultdict(dict)
    conflicts = 0
    for lang, group, text in [(q.lang, q.group, q.text) for q in collection.queries] + \
            [(c.lang, g, c.text) for c in collection.candidates for g in c.groups]:
        known = table[lang].get(group)
        if known is None:
            table[lang][group] = text
        elif known != text:
            conflicts += 1
    return dict(table), conflicts


def find_pivot(codes, pivot: str) -> str:
    """The collection code that is the pivot language (matched through the language table)."""
    target = lang_table.canonical(pivot)
    matches = [c for c in codes if c == pivot or lang_table.canonical(c) == target]
    if not matches:
        raise ConfigError(f"pivot: language {pivot!r} is not in the collection (languages: {sorted(codes)[:10]}...)")
    return pivot if pivot in matches else sorted(matches, key=len)[0]


def _first_sentences(table, pivot_code, langs, limit: int) -> dict[str, dict[str, str]]:
    """Each language cut to its first `limit` groups shared with the pivot (collection order);
    the pivot keeps the union of those groups. Fewer candidates make retrieval easier: results are
    comparable only between runs with the same limit."""
    if limit < 1:
        raise ConfigError(f"max_sentences: expected a positive integer, got {limit}")
    cut = {lang: {g: t for g, t in table[lang].items() if g in table[pivot_code]} for lang in langs}
    cut = {lang: dict(list(rows.items())[:limit]) for lang, rows in cut.items()}
    kept = {g for rows in cut.values() for g in rows}
    cut[pivot_code] = {g: t for g, t in table[pivot_code].items() if g in kept}
    return cut


def _embed(encoder, table, langs, options) -> dict[str, dict[str, np.ndarray]]:
    """Embeddings per (lang, group), encoding all sentences in one call (the encoder batches)."""
    keys = [(lang, g) for lang in langs for g in table[lang]]
    vectors = encode_texts(encoder, [table[lang][g] for lang, g in keys], options.kind,
                           options.batch_size, options.cache_dir)
    vectors = np.asarray(vectors, dtype=np.float32)
    out: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for (lang, g), vec in zip(keys, vectors):
        out[lang][g] = vec
    return dict(out)


def encode_texts(encoder, texts: list[str], kind: str, batch_size: int, cache_dir=None) -> np.ndarray:
    """`encoder.encode`, through the on-disk embedding cache when `cache_dir` is given."""
    if cache_dir is None:
        return np.asarray(encoder.encode(texts, kind=kind, batch_size=batch_size), dtype=np.float32)
    from mixlingual.evaluation.embedding_cache import encode_cached

    return encode_cached(encoder, texts, kind, cache_dir=cache_dir, batch_size=batch_size)


def _pair_metrics(src: np.ndarray, tgt: np.ndarray) -> dict[str, float]:
    """src[i] is aligned with tgt[i]: accuracy, mAP and R@10 of retrieving tgt[i] for src[i]."""
    relevance = Relevance.from_lists([[i] for i in range(len(src))])
    ranks = score_relevant(src, tgt, relevance).pool_ranks.astype(np.float64)[:, None]
    return {"acc": float(M.success_at_k(ranks, 1).mean()), "map": float(M.average_precision(ranks).mean()),
            "r@10": float(M.success_at_k(ranks, 10).mean()), "n": int(len(src))}


def pool_ranks(vectors: np.ndarray, n_langs: int) -> np.ndarray:
    """Pool of n_langs blocks of N aligned sentences (row = lang * N + sentence); every row queries it.

    Returns (n_rows, n_langs) pool ranks of the query's translation in each language, with the
    query itself removed from the pool and NaN in its own language's column. Ties are pessimistic
    as in `mixlingual.evaluation.metrics`. Each row is sorted once and the translations' ranks looked up by
    binary search: `search.score_relevant` makes one pass over the pool per relevant slot, which
    costs n_langs passes per query here.
    """
    n_rows = len(vectors)
    n = n_rows // n_langs
    out = np.full((n_rows, n_langs), np.nan)
    chunk = max(1, (32 << 20) // (8 * n_rows))
    for a in range(0, n_rows, chunk):
        rows = np.arange(a, min(a + chunk, n_rows))
        scores = vectors[rows] @ vectors.T
        scores[np.arange(len(rows)), rows] = -np.inf           # a query is not its own candidate
        relevant = (rows % n)[:, None] + n * np.arange(n_langs)[None, :]   # (r, n_langs) pool indices
        rel_scores = np.take_along_axis(scores, relevant, 1)
        sorted_rows = np.sort(scores, axis=1)
        ge = np.stack([n_rows - np.searchsorted(sorted_rows[i], rel_scores[i], side="left")
                       for i in range(len(rows))])
        own = relevant == rows[:, None]
        tied_after = (rel_scores[:, :, None] == rel_scores[:, None, :]) & \
            (relevant[:, None, :] > relevant[:, :, None]) & ~own[:, None, :]
        ranks = (ge - tied_after.sum(2)).astype(np.float64)
        out[rows] = np.where(own, np.nan, ranks)
    return out


def _pool_metrics(vectors, pool_langs: list[str], n: int) -> dict[str, dict[str, float]]:
    ranks = pool_ranks(np.concatenate([vectors[lang] for lang in pool_langs]), len(pool_langs))
    sorted_ranks = np.sort(np.where(np.isnan(ranks), np.inf, ranks), axis=1)[:, :-1]  # drop own column
    ap = M.average_precision(sorted_ranks)
    spread = M.rank_distance(ranks)
    out = {}
    for j, lang in enumerate(pool_langs):
        rows = slice(j * n, (j + 1) * n)
        out[lang] = {"map": float(ap[rows].mean()), "rank_distance": M.mean_ignoring_nan(spread[rows]),
                     "r@1": float((sorted_ranks[rows, 0] == 1).mean())}
    return out


def _summaries(per_language: dict, options: BitextOptions) -> dict:
    """Mean of every per-language metric within each group of each grouping."""
    out = {}
    for by in GROUPINGS:
        groups = lang_table.group_languages(per_language, by, trained=options.trained_langs,
                                            pretraining=options.pretraining)
        out[by] = {}
        for name, members in groups.items():
            keys = sorted({k for m in members for k, v in per_language[m].items() if isinstance(v, float)})
            out[by][name] = {"n_languages": len(members),
                             **{k: M.macro_mean({m: per_language[m].get(k) for m in members}) for k in keys}}
    return out


def evaluate_bitext(encoder, collection: Collection, pivot: str = "eng", *, out_dir=None, **options) -> dict:
    """Bitext metrics of `encoder` (anything with `encode(texts, kind=, batch_size=)`) on `collection`."""
    unknown = set(options) - set(BitextOptions.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"evaluate_bitext: unknown options {sorted(unknown)}")
    opts = BitextOptions(pivot=pivot, **options)
    table, conflicts = sentence_table(collection)
    pivot_code = find_pivot(table, opts.pivot)
    langs = [lang for lang in (opts.langs or sorted(table)) if lang != pivot_code]
    missing = [lang for lang in langs if lang not in table]
    if missing:
        raise ConfigError(f"langs: not in collection {collection.name}: {missing}")
    if opts.max_sentences is not None:
        table = _first_sentences(table, pivot_code, langs, opts.max_sentences)
    vectors = _embed(encoder, table, [pivot_code, *langs], opts)
    per_language: dict[str, dict] = {}
    for lang in langs:
        groups = sorted(set(table[lang]) & set(table[pivot_code]))
        if not groups:
            raise DataError(f"language {lang} shares no group (sentence id) with pivot {pivot_code}",
                            path=collection.name)
        src = np.stack([vectors[lang][g] for g in groups])
        tgt = np.stack([vectors[pivot_code][g] for g in groups])
        forward, backward = _pair_metrics(src, tgt), _pair_metrics(tgt, src)
        row = lang_table.table().get(lang)
        per_language[lang] = {
            "name": row.name if row else lang, "script": lang_table.script_of(lang),
            "resource": lang_table.resource_level(lang),
            "seen": lang_table.seen_status(lang, opts.trained_langs, opts.pretraining), "n": forward["n"],
            **{f"xx->pivot {k}": forward[k] for k in PAIR_METRICS},
            **{f"pivot->xx {k}": backward[k] for k in PAIR_METRICS},
        }
    pool = _pool_setting(vectors, table, pivot_code, langs, opts)
    for lang, values in pool.get("per_language", {}).items():
        if lang in per_language:
            per_language[lang].update({f"multi {k}": v for k, v in values.items()})
    result = {
        "collection": collection.name, "pivot": pivot_code, "options": asdict(opts),
        "encoder": getattr(encoder, "name", type(encoder).__name__), "duplicate_conflicts": conflicts,
        "settings": {
            direction: {k: M.macro_mean({lang: v[f"{direction} {k}"] for lang, v in per_language.items()})
                        for k in PAIR_METRICS}
            for direction in ("xx->pivot", "pivot->xx")
        } | {"multi": pool.get("summary", {})},
        "per_language": per_language,
        "groups": _summaries(per_language, opts),
    }
    if out_dir is not None:
        write_bitext_report(result, Path(out_dir))
    return result


def _pool_setting(vectors, table, pivot_code, langs, opts: BitextOptions) -> dict:
    """Sample the pool, rank, and summarise; {} when disabled or when no sentence is shared."""
    if not opts.pool_sentences:
        return {}
    rng = np.random.default_rng(opts.seed)
    pool_langs = [pivot_code, *langs]
    if opts.pool_langs and opts.pool_langs < len(pool_langs):
        pool_langs = [pivot_code, *sorted(rng.choice(langs, opts.pool_langs - 1, replace=False).tolist())]
    shared = sorted(set.intersection(*(set(table[lang]) for lang in pool_langs)))
    if len(pool_langs) < 2 or not shared:
        return {"summary": {"skipped": "no sentence group is shared by the pooled languages"}}
    groups = sorted(rng.choice(shared, min(opts.pool_sentences, len(shared)), replace=False).tolist())
    stacked = {lang: np.stack([vectors[lang][g] for g in groups]) for lang in pool_langs}
    per_language = _pool_metrics(stacked, pool_langs, len(groups))
    summary = {k: M.macro_mean({l: v[k] for l, v in per_language.items()}) for k in ("map", "r@1", "rank_distance")}
    summary.update(pool_languages=len(pool_langs), pool_sentences=len(groups))
    return {"per_language": per_language, "summary": summary}


# ----- files: metrics.json, bitext.md, bitext_groups.png ----------------------------------
_RESOURCE_ORDER = {"high": 0, "low": 1, "unknown": 2}


def _fmt(value) -> str:
    return "-" if value is None else (f"{100 * value:.1f}" if isinstance(value, float) and value <= 1 else
                                      f"{value:.1f}" if isinstance(value, float) else str(value))


def markdown(result: dict) -> str:
    """Group summaries and the per-language table (percentages; rank distance in ranks)."""
    columns = [f"xx->pivot {k}" for k in PAIR_METRICS] + [f"pivot->xx {k}" for k in PAIR_METRICS] + \
        ["multi map", "multi rank_distance"]
    pivot = result["pivot"]
    lines = [f"# Bitext retrieval: {result['collection']} (pivot {pivot}, encoder {result['encoder']})", ""]
    settings = result["settings"]
    lines += ["| setting | " + " | ".join(settings["xx->pivot"]) + " |", "|---" * 4 + "|"]
    for name in ("xx->pivot", "pivot->xx"):
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in settings[name].values()) + " |")
    if settings.get("multi"):
        lines += ["", "multilingual pool: " + ", ".join(f"{k} {_fmt(v)}" for k, v in settings["multi"].items())]
    header = "| group | languages | " + " | ".join(c.replace("pivot", pivot) for c in columns) + " |"
    for by in GROUPINGS:
        lines += ["", f"## By {by}", "", header, "|---" * (len(columns) + 2) + "|"]
        for name, values in result["groups"][by].items():
            lines.append(f"| {name} | {values['n_languages']} | " + " | ".join(_fmt(values.get(c)) for c in columns) + " |")
    lines += ["", "## Per language", "", "| lang | name | script | resource | seen | " +
              " | ".join(c.replace("pivot", pivot) for c in columns) + " |", "|---" * (len(columns) + 5) + "|"]
    rows = sorted(result["per_language"].items(), key=lambda kv: (_RESOURCE_ORDER.get(kv[1]["resource"], 3), kv[0]))
    for lang, v in rows:
        lines.append(f"| {lang} | {v['name']} | {v['script']} | {v['resource']} | {v['seen']} | " +
                     " | ".join(_fmt(v.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_groups(result: dict, path: Path) -> None:
    """Bar chart: xx->pivot and pivot->xx accuracy per resource level and per seen status."""
    from mixlingual.evaluation.report import plot_group_bars

    pivot = result["pivot"]
    plot_group_bars({by: result["groups"][by] for by in ("resource", "seen")},
                    [("xx->pivot acc", f"xx->{pivot} acc"), ("pivot->xx acc", f"{pivot}->xx acc")],
                    path, ylabel="accuracy (%)", suptitle=f"{result['collection']}: {result['encoder']}")


def write_bitext_report(result: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "metrics.json", result)
    write_atomic(out_dir / "bitext.md", markdown(result))
    plot_groups(result, out_dir / "bitext_groups.png")
