"""`mixlingual encode`: embed a text file with a model into ``.npy`` plus a JSON sidecar.

Input is one text per line, or JSONL with a ``text`` field (``--format auto`` picks JSONL for
``.jsonl`` files). Row ``i`` of the output is record ``i`` of the input: an empty line or a record
without text is an error naming its line, never skipped. Both output files are written to temp
paths and moved into place, so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mixlingual.errors import ConfigError, DataError
from mixlingual.io import atomic_open, write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="embedded:multilingual-e5-small, a model folder or a HF id")
    parser.add_argument("--kind", required=True, choices=("query", "passage", "sentence"),
                        help="which prefix and max length to use (sentence: the query prefix at the "
                        "model's full length, for symmetric tasks such as bitext)")
    parser.add_argument("--input", required=True, help="text file (one per line) or JSONL")
    parser.add_argument("--out", required=True, help="output .npy (float32, one row per text)")
    parser.add_argument("--format", choices=("auto", "lines", "jsonl"), default="auto",
                        help="input format (auto: jsonl for *.jsonl, else lines)")
    parser.add_argument("--field", default="text", help="JSONL field holding the text")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fp32", action="store_true",
                        help="compute in float32 (default: bf16 where the hardware supports it)")
    parser.add_argument("--long-input", choices=("truncate", "window"), default=None,
                        help="texts over the max length: cut them, or average windows")
    from mixlingual.models.debias_use import add_debias_arguments

    add_debias_arguments(parser, overlap=False)
    parser.add_argument("--lang", help="language of every text (needed with a 'center' --debias file; kind "
                                       "sentence uses the query side)")


def read_texts(path: str, fmt: str = "auto", field: str = "text") -> list[str]:
    """The texts of a lines or JSONL file, with DataError naming the line of a bad record."""
    if not Path(path).is_file():
        raise DataError("input file not found", path=path)
    if fmt == "auto":
        fmt = "jsonl" if path.endswith(".jsonl") else "lines"
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no record
    texts = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if fmt == "lines":
            if not line.strip():
                raise DataError("empty line; every line must hold one text (row i of the "
                                "output is line i)", path=path, line=number)
            texts.append(line)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg})", path=path, line=number) from err
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise DataError("missing or not a string; expected an object with a text",
                            path=path, line=number, field=field)
        texts.append(record[field])
    if not texts:
        raise DataError("no texts to encode", path=path)
    return texts


def run(args: argparse.Namespace) -> int:
    from mixlingual.models.debias_use import debias_from_args, is_debias_export, load_exported
    from mixlingual.models.encoder import BiEncoder

    texts = read_texts(args.input, args.format, args.field)
    debias = debias_from_args(args)
    if debias is not None and debias.debias.method == "center":   # fail before the model loads
        if not args.lang:
            raise ConfigError(f"--debias {args.debias} centers per language: give the texts' language with --lang")
        debias.debias.resolve_languages(args.lang, fallback=debias.fallback)
    overrides = {"precision": "fp32"} if args.fp32 else {}
    if args.long_input:
        overrides["long_input"] = args.long_input
    exported = is_debias_export(args.model)
    encoder = (load_exported if exported else BiEncoder.from_pretrained)(args.model, **overrides)
    vectors = encoder.encode(texts, kind=args.kind, batch_size=args.batch_size,
                             **({"language": args.lang} if exported and args.lang else {}))
    applied = None
    if debias is not None:
        vectors, applied = debias.apply_texts(encoder, vectors, args.lang, args.kind)
    out = Path(args.out)
    sidecar = {
        "model": encoder.name, "fingerprint": encoder.fingerprint(), "kind": args.kind,
        "prefix": encoder.prefix(args.kind), "max_length": encoder.max_length(args.kind),
        "long_input": encoder.config.long_input, "precision": encoder.config.precision,
        "normalized": encoder.config.normalize, "dtype": str(vectors.dtype),
        "count": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "input": args.input,
    }
    if applied is not None:
        sidecar["debias"] = {**applied, "lang": args.lang}
    with atomic_open(out, "wb") as handle:
        np.save(handle, vectors)
    write_atomic(Path(f"{out}.json"), json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {out} ({vectors.shape[0]} x {vectors.shape[1]} float32) and {out}.json")
    return 0
