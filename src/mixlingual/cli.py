"""The `mixlingual` command.

Every subcommand lives in its own module, which exposes two functions::

    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

Modules are imported only when their subcommand is used, so `mixlingual --help` and light
commands stay fast (torch and transformers take seconds to import).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mixlingual.errors import MixlingualError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "backbone": ("mixlingual.models.backbones.cli", "materialize and describe a backbone (optionally save it)"),
    "encode": ("mixlingual.models.encode_cli", "embed a text file with a model, writing .npy + JSON sidecar"),
    "merge": ("mixlingual.models.merge_cli", "merge models linearly: (1 - W) * A + W * B (several: --weights)"),
    "data": ("mixlingual.data.cli", "list, inspect, convert and overlap-check datasets"),
    "mine": ("mixlingual.training.mine_cli", "mine hard negatives for training items (never a translation of the positive)"),
    "train": ("mixlingual.training.loop", "train a bi-encoder from a YAML config (hybrid batches)"),
    "evaluate": ("mixlingual.evaluation.cli", "evaluate a model: mono / cross / multi retrieval, bitext"),
    "report": ("mixlingual.evaluation.report", "put several evaluations side by side (tables + plots)"),
    "demo": ("mixlingual.experiments.demo", "X-X only vs hybrid batches on the built-in demo set, before/after"),
    "sweep": ("mixlingual.experiments.sweep.plan", "grid of training runs with aggregation and significance"),
    "convergence": ("mixlingual.experiments.convergence.report", "dev curves: steps to 95% of the end per language group, over seeds"),
    "attack": ("mixlingual.experiments.robustness.attack", "black-box adversarial typo attack on a model's queries"),
    "robustness": ("mixlingual.experiments.robustness.run", "clean vs perturbed queries: metric change, top-1 flips; --summarize, --study"),
    "probe": ("mixlingual.experiments.transfer.probe", "zero-shot transfer probes on frozen embeddings"),
    "tables": ("mixlingual.experiments.sweep.tables", "a sweep summary's findings tables (markdown): means over seeds, effects"),
    "debias": ("mixlingual.models.debias_cli", "training-free language debiasing: fit per-language means, export"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixlingual",
        description="Train and evaluate multilingual dense retrievers with hybrid batch training.",
        epilog="commands:\n" + "\n".join(f"  {n:<10} {h}" for n, (_, h) in COMMANDS.items())
        + "\n\nRun `mixlingual COMMAND --help` for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    from mixlingual import __version__

    parser.add_argument("--version", action="version", version=f"mixlingual {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv[:1] or ["--help"])  # prints help / version / a clear error and exits
        return 2
    name = argv[0]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"mixlingual {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except MixlingualError as err:
        print(f"mixlingual {name}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
