"""Record validation for the canonical JSONL formats: JSON Schema for structure, code for meaning.

The schemas in `mixlingual/schemas/` check structure (required fields, types, non-blank text,
no unknown fields). `check_parallel` / `check_collection_record` add what a schema cannot say
well: language codes must be registered, negatives need a positive in the same language. Each
problem is raised as a `RecordProblem` with a short reason (the key of skip counts) and the
field it concerns; the reader turns it into a `DataError` naming file and line.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import jsonschema

from mixlingual.data.languages import language_problem

# jsonschema keyword -> reason key used in skip counts
_REASONS = {
    "required": "missing_field", "type": "wrong_type", "pattern": "empty_text",
    "minLength": "empty_text", "minProperties": "empty_field", "additionalProperties": "unknown_field",
    "const": "bad_value", "enum": "bad_value",
}


class RecordProblem(Exception):
    """One thing wrong with one record: `reason` (a skip-count key), `message`, `field`."""

    def __init__(self, reason: str, message: str, field: str | None = None):
        super().__init__(message)
        self.reason, self.message, self.field = reason, message, field


@cache
def load_schema(name: str) -> dict:
    """The JSON Schema `name` ("parallel_item" or "collection") shipped in mixlingual/schemas."""
    text = resources.files("mixlingual.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def _inline_refs(node, defs: dict):
    """Replace local `{"$ref": "#/$defs/x"}` by the definition itself (our schemas are not
    recursive): jsonschema then skips reference resolution, which halves validation time."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.rsplit("/", 1)[1]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


@cache
def _validator(name: str, definition: str | None = None):
    schema = load_schema(name)
    defs = schema.get("$defs", {})
    # one branch of the collection schema at a time, so errors stay specific to the record type
    flat = _inline_refs(defs[definition] if definition is not None else schema, defs)
    flat["$schema"] = schema["$schema"]
    return jsonschema.validators.validator_for(flat)(flat)


def _schema_check(obj, name: str, definition: str | None = None) -> None:
    validator = _validator(name, definition)
    if validator.is_valid(obj):
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    path = [str(p) for p in error.absolute_path]
    reason = _REASONS.get(error.validator, "invalid")
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        path.append(missing[0] if missing else "?")
        message = "required field is missing"
    elif error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path.append(extra[0] if extra else "?")
        message = "unknown field (put extras under 'meta')"
    elif reason == "empty_text":
        message = "text is empty or whitespace only"
    elif reason == "wrong_type":
        message = f"expected {error.validator_value}, got {type(error.instance).__name__}"
    else:
        message = error.message
    raise RecordProblem(reason, message, ".".join(path) or None)


def _check_lang(code, field: str) -> None:
    problem = language_problem(code)
    if problem:
        raise RecordProblem("bad_language", problem, field)


def check_parallel(obj) -> None:
    """Raise `RecordProblem` unless `obj` is a valid parallel-item dict."""
    _schema_check(obj, "parallel_item")
    for key in ("queries", "positives", "negatives"):
        for lang in obj.get(key, {}):
            _check_lang(lang, f"{key}.{lang}")
    for lang in obj.get("negatives", {}):
        if lang not in obj["positives"]:
            raise RecordProblem("inconsistent_language",
                                f"negatives in '{lang}' but no positive in '{lang}'", f"negatives.{lang}")


def check_collection_record(obj) -> str:
    """Raise `RecordProblem` unless `obj` is a valid collection line; return its type."""
    if not isinstance(obj, dict):
        raise RecordProblem("wrong_type", f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in ("collection", "query", "candidate"):
        raise RecordProblem("bad_value" if "type" in obj else "missing_field",
                            "expected 'collection', 'query' or 'candidate'", "type")
    _schema_check(obj, "collection", {"collection": "header"}.get(kind, kind))
    if kind != "collection":
        _check_lang(obj["lang"], "lang")
    return kind
