"""Command-line entry points of the image-text extension.

* `mixlingual evaluate --benchmark image-text --data CAPTIONS --model DIR --out OUT
  [--format jsonl|multi30k|xflickrco|xtd10|xm3600|synthetic] [--images FOLDER] [--split NAME]`
  (hooked into `mixlingual.evaluation.cli`, which delegates here for this benchmark);
* `mixlingual demo --task image-text [--out DIR] [--steps N]` - train on the generated scenes and
  compare the evaluation before and after (hooked into `mixlingual.experiments.demo`).

Both are also runnable alone: `python -m mixlingual.imagetext.cli evaluate|demo ...`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mixlingual.imagetext.formats import LOADERS

BENCHMARK = "image-text"


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `--benchmark image-text` adds to `mixlingual evaluate`."""
    group = parser.add_argument_group("image-text (--benchmark image-text)")
    group.add_argument("--format", dest="caption_format", default="jsonl", choices=sorted(LOADERS),
                       help="caption file layout of --data (default: canonical JSONL)")
    group.add_argument("--images", help="folder with the benchmark's image files")
    group.add_argument("--split", help="split name (multi30k: test_2016_flickr; xflickrco: test)")
    group.add_argument("--captions-per-image", type=int, default=1,
                       help="captions used per image and language (the first N)")


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate an image-text model folder on an image-caption set; write metrics.json + report.md."""
    import torch

    from mixlingual.imagetext.evaluate import evaluate_image_text
    from mixlingual.imagetext.formats import load_image_captions
    from mixlingual.imagetext.model import ImageTextModel

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    options = {}
    if args.caption_format != "jsonl" or args.images:
        options["images"] = args.images
    if args.split:
        options["split"] = args.split
    if args.caption_format == "synthetic":
        options = {"n": 540, "seed": 1000, "exclude": {"n": 3000, "seed": 0}}
    items = load_image_captions(args.caption_format, args.data, **options)
    model = ImageTextModel.load(args.model)
    langs = _langs(getattr(args, "langs", None))
    metrics = evaluate_image_text(model, items, langs=langs, captions_per_image=args.captions_per_image,
                                  out_dir=args.out, batch_size=getattr(args, "batch_size", 256) or 256)
    print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
    return 0


def _langs(values) -> list[str] | None:
    if not values:
        return None
    return [lang for value in values for lang in value.split(",") if lang]


# ----- demo ---------------------------------------------------------------------------------
DEMO_STEPS = 600
DEMO_SETTINGS = [
    "train.task=image-text", "train.batch_size=64", "train.precision=fp32", "train.log_every=50",
    "train.checkpoint_every=1000", "data.train.name=synthetic", "data.train.options={n: 3000, seed: 0, size: 64}",
    "eval.data.name=synthetic",
    "eval.data.options={n: 540, seed: 1000, size: 64, exclude: {n: 3000, seed: 0}}", "eval.at_start=true",
    "eval.metric=settings.t2i.r@1", "sampling.kind=hybrid", "sampling.alpha=0.5", "loss.temperature=0.07",
    "loss.learnable_temperature=true", "optim.lr=0.002", "optim.warmup_ratio=0.05", "output.tensorboard=false",
    "imagetext={image_tower: conv, image_size: 64, widths: [32, 64, 128], text_tower: scratch,"
    " freeze_text: false, text_head: linear}",
]


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo-image-text", help="output folder")
    parser.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps (600: 2-4 CPU minutes)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo run in --out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")


def run_demo(args: argparse.Namespace) -> int:
    """Train on the synthetic scenes (hybrid batches), evaluate before/after, print the comparison."""
    import shutil

    from mixlingual.training.config import load_config
    from mixlingual.imagetext.evaluate import evaluate_image_text
    from mixlingual.imagetext.formats import load_image_captions
    from mixlingual.imagetext.model import ImageTextModel
    from mixlingual.training.loop import train

    from mixlingual.errors import ConfigError

    # `mixlingual demo --task image-text` shares the text demo's options (its default --out is runs/demo)
    out = Path(args.out if args.out != "runs/demo" else "runs/demo-image-text")
    steps = args.steps or DEMO_STEPS
    if (out / "train").exists():
        if not getattr(args, "overwrite", False):
            raise ConfigError(f"--out: {out} holds an earlier run; pass --overwrite or choose another folder")
        shutil.rmtree(out / "train")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    config = load_config(None, DEMO_SETTINGS + [f"train.max_steps={steps}", f"output.dir={out / 'train'}",
                                                *args.set])
    train(config)
    evals = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["type"] == "eval"]
    before, after = evals[0], evals[-1]
    model = ImageTextModel.load(str(out / "train" / "model"))
    items = load_image_captions("synthetic", None, **config.eval.data.options)
    evaluate_image_text(model, items, out_dir=out / "eval")
    print(f"\nimage-text demo: {config.train.max_steps} steps on {config.data.train.options.get('n')} generated "
          f"scenes, evaluated on {len(items)} held-out scenes, {len(items[0].captions)} caption languages")
    print(f"{'metric':<28}{'before':>10}{'after':>10}")
    for setting in ("t2i", "i2t", "i2t_multi"):
        for metric in ("r@1", "r@10"):
            print(f"{setting + ' ' + metric:<28}{before['settings'][setting][metric]:>10.3f}"
                  f"{after['settings'][setting][metric]:>10.3f}")
    print(f"{'rank distance (lang. bias)':<28}{before['rank_distance']['mean']:>10.1f}"
          f"{after['rank_distance']['mean']:>10.1f}")
    print(f"\nreport: {out / 'eval' / 'report.md'}; model: {out / 'train' / 'model'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixlingual.imagetext.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    evaluate = sub.add_parser("evaluate", help="evaluate an image-text model")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", help="caption file or folder (ignored for --format synthetic)")
    evaluate.add_argument("--out", required=True)
    evaluate.add_argument("--langs", nargs="+")
    add_evaluate_arguments(evaluate)
    add_demo_arguments(sub.add_parser("demo", help="train + evaluate on the synthetic scenes"))
    args = parser.parse_args(argv)
    return run_evaluate(args) if args.command == "evaluate" else run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
