"""Write and read the sentence-transformers folder layout for a bi-encoder.

The model and tokenizer files sit at the folder root (module 0, path ""), followed by
``1_Pooling`` and ``2_Normalize`` modules, so that both ``SentenceTransformer(folder)`` and
``AutoModel.from_pretrained(folder)`` load it. Our full encoder settings (separate query and
passage lengths, long-input mode) are kept in ``mixlingual_encoder.json``; the ST files carry the
subset sentence-transformers understands (one ``max_seq_length``, prompts, pooling).
"""

from __future__ import annotations

import json
from pathlib import Path

ENCODER_FILE = "mixlingual_encoder.json"
_FORMAT_VERSION = 1


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_st_files(folder: Path, settings: dict, dim: int, *, has_pooler: bool = True) -> None:
    """Write modules.json, pooling/normalize modules, ST configs and our own settings file.

    ``settings`` is an EncoderConfig as a dict plus ``backbone`` (the name it was loaded from).
    ``has_pooler=False`` (a BERT-family model built without its pooler, which a bi-encoder never
    uses) tells sentence-transformers to build the model the same way (``model_args``), so
    loading the folder neither creates random pooler weights nor reports them as MISSING.
    """
    import sentence_transformers
    import torch
    import transformers

    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if settings["normalize"]:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(folder / "modules.json", modules)
    st_transformer = {"max_seq_length": settings["max_length_passage"], "do_lower_case": False}
    if not has_pooler:
        st_transformer["model_args"] = {"add_pooling_layer": False}
    _write_json(folder / "sentence_bert_config.json", st_transformer)
    _write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": settings["pooling"] == "cls",
        "pooling_mode_mean_tokens": settings["pooling"] == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    })
    _write_json(folder / "config_sentence_transformers.json", {
        "__version__": {"sentence_transformers": sentence_transformers.__version__,
                        "transformers": transformers.__version__,
                        "pytorch": torch.__version__},
        "prompts": {"query": settings["query_prefix"], "document": settings["passage_prefix"],
                    "passage": settings["passage_prefix"]},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    _write_json(folder / ENCODER_FILE, {"format_version": _FORMAT_VERSION, **settings})


def read_settings(folder: str) -> dict:
    """Encoder settings stored in a folder: ours if present, else derived from the ST files.

    Returns only the keys found (an empty dict for a plain transformers folder).
    """
    root = Path(folder)
    ours = root / ENCODER_FILE
    if ours.is_file():
        data = json.loads(ours.read_text(encoding="utf-8"))
        data.pop("format_version", None)
        data.pop("backbone", None)
        return data
    settings: dict = {}
    st_config = root / "config_sentence_transformers.json"
    if st_config.is_file():
        prompts = json.loads(st_config.read_text(encoding="utf-8")).get("prompts") or {}
        if "query" in prompts:
            settings["query_prefix"] = prompts["query"]
        for key in ("passage", "document"):
            if key in prompts:
                settings["passage_prefix"] = prompts[key]
                break
    pooling = root / "1_Pooling" / "config.json"
    if pooling.is_file():
        modes = json.loads(pooling.read_text(encoding="utf-8"))
        if modes.get("pooling_mode_cls_token"):
            settings["pooling"] = "cls"
        elif modes.get("pooling_mode_mean_tokens"):
            settings["pooling"] = "mean"
    modules = root / "modules.json"
    if modules.is_file():
        types = [m.get("type", "") for m in json.loads(modules.read_text(encoding="utf-8"))]
        settings["normalize"] = any(t.endswith("Normalize") for t in types)
    bert_config = root / "sentence_bert_config.json"
    if bert_config.is_file():
        length = json.loads(bert_config.read_text(encoding="utf-8")).get("max_seq_length")
        if length:
            settings["max_length_query"] = settings["max_length_passage"] = int(length)
    return settings

