"""Training configuration: dataclasses, YAML loading, `--set key=value` overrides, validation.

A config file is YAML with the sections below (every key optional; defaults are the paper's
settings where it gives them). `--set` takes dotted keys and YAML-typed values::

    mixlingual train configs/mlqa-hybrid.yaml --set sampling.alpha=0.3 --set train.max_steps=50

Everything is checked before any model is loaded: unknown keys (with the closest known key
suggested), wrong types, out-of-range values; checks that need the data (a language with no
items, a batch larger than the number of parallel groups) run right after loading it, still
before training. Each error names the key. Relative paths are taken from the working directory.

One module on purpose: the schema (the dataclasses and their defaults), loading with overrides and
every check name the same keys, so a new key is added, defaulted and validated in one file.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mixlingual.errors import ConfigError
from mixlingual.training.sampling.schedule import SHAPES, RatioSchedule, check_ratios


@dataclass
class ModelConfig:
    name: str = "embedded:multilingual-e5-small"  # backbone or model folder (BiEncoder.from_pretrained)
    max_length_query: int = 64
    max_length_passage: int = 256
    query_prefix: str | None = None               # None: the encoder's default ("query: ")
    passage_prefix: str | None = None
    freeze_word_embeddings: bool = False          # the 250k x d matrix dominates optimizer cost
    unpad: bool = True                            # padding-free training forward (BERT-family models)
    length_buckets: int = 1                       # padded forward only: N length-sorted chunks (less padding)


@dataclass
class DatasetRef:
    name: str | None = None                       # registry name: mlqa, demo, jsonl, ...
    path: str | None = None
    options: dict = field(default_factory=dict)   # passed to the loader


@dataclass
class DataConfig:
    train: DatasetRef = field(default_factory=lambda: DatasetRef(name="demo"))
    languages: list | None = None                 # restrict training pairs to these languages
    hard_negatives: int = 0                       # hard negatives per pair (from item.negatives)
    max_items: int | None = None                  # keep the first N items (quick runs)
    stream: bool = False                          # read items as a stream (data too big for memory)
    buffer_size: int = 10000                      # streaming: items held in memory at once
    remine_every: int = 0                         # re-mine hard negatives every K steps (0: never)
    mining: dict = field(default_factory=dict)    # mixlingual.training.mining.MineOptions: k, depth, margin, ...


@dataclass
class SamplingConfig:
    kind: str = "hybrid"                          # hybrid | mono | cross | mixture
    alpha: float = 0.5                            # hybrid: P(X-X batch)
    alpha_end: float | None = None                # hybrid schedule target
    ratios: dict | None = None                    # mixture: {X-X: .., X-Y: .., mixed: ..}
    ratios_end: dict | None = None                # mixture schedule target
    schedule: str = "constant"                    # constant | linear | step
    switch_at: float = 0.5                        # step schedule: fraction of training
    language_weighting: str = "uniform"           # uniform | size | temperature (X-X language)
    temperature: float = 1.0


@dataclass
class LossConfig:
    temperature: float = 0.05
    learnable_temperature: bool = False


@dataclass
class OptimConfig:
    lr: float = 3e-5
    weight_decay: float = 0.01                    # not applied to biases and LayerNorm weights
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    scheduler: str = "linear"                     # linear | cosine | constant (after warmup)
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None               # overrides warmup_ratio
    max_grad_norm: float | None = 1.0


@dataclass
class TrainConfig:
    task: str = "text"                            # a key of mixlingual.training.tasks.TASKS
    batch_size: int = 32                          # pairs per rank per micro-batch
    grad_accum: int = 1
    mini_batch: int | None = None                 # GradCache chunk (pairs); None: one graph per batch
    max_steps: int | None = None                  # optimizer steps; else `epochs` passes
    epochs: int = 1
    precision: str = "bf16"                       # bf16 | fp32
    device: str = "auto"                          # auto | cpu | cuda
    threads: int | None = None                    # CPU threads for torch (None: torch's default)
    seed: int = 42
    log_every: int = 10
    checkpoint_every: int = 100
    keep_last: int = 2
    progress: bool = True
    merge_with_base: float | None = None          # OUT/model = (1 - W) * base + W * fine-tuned (None: off)


@dataclass
class EvalConfig:
    data: DatasetRef = field(default_factory=DatasetRef)   # an evaluation collection (or none)
    every_steps: int = 0                          # 0: only at start / end
    at_start: bool = True
    at_end: bool = True
    settings: list = field(default_factory=lambda: ["mono", "cross", "multi"])
    langs: list | None = None
    metric: str = "settings.multi.map"            # best-checkpoint / early-stopping metric
    mode: str = "max"
    patience: int | None = None                   # evaluations without improvement before stopping


@dataclass
class OutputConfig:
    dir: str = "runs/train"
    overlap: str = "warn"                         # train/eval overlap: warn | refuse
    tensorboard: bool = True


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    imagetext: dict = field(default_factory=dict)  # train.task=image-text options (mixlingual.imagetext.task)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def ratio_schedule(self, total_steps: int) -> RatioSchedule:
        """The batch-kind schedule the sampling section describes."""
        s = self.sampling
        if s.kind == "hybrid":
            return RatioSchedule.hybrid(s.alpha, s.alpha_end, s.schedule, total_steps, s.switch_at)
        if s.kind == "mixture":
            return RatioSchedule(s.ratios or {}, s.ratios_end, s.schedule, total_steps, s.switch_at)
        return RatioSchedule({"X-X": 1.0} if s.kind == "mono" else {"X-Y": 1.0})


# ----- building dataclasses from plain dicts, strictly ----------------------------------------
def _check_type(key: str, value, hint):
    """Return `value` if it fits the type hint (ints accepted for floats), else raise naming `key`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" (no dot) as a string; accept it as the number it means
            return float(value)
        except ValueError:
            pass
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"{key}: expected {getattr(expected, '__name__', expected)}, got {value!r}")
    return value


def _build(cls, data, prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known: {', '.join(names)}"
            raise ConfigError(f"unknown config key '{prefix}{key}'{hint}")
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _build(hints[key], value or {}, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_type(prefix + key, value, hints[key])
    return cls(**kwargs)


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `dotted.key=yaml_value` to the nested dict `data` in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set '{assignment}': expected KEY=VALUE (e.g. sampling.alpha=0.3)")
    key, raw = assignment.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else None
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: '{part}' is a value, not a section")
    node[parts[-1]] = value


def config_from_dict(data: dict, overrides: list[str] = ()) -> Config:
    """Build and validate a `Config` from nested dicts (as YAML would give), after `--set` overrides."""
    data = copy.deepcopy(data)
    for assignment in overrides:
        apply_override(data, assignment)
    config = _build(Config, data)
    validate(config)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read YAML (if given), apply `--set` overrides, build and validate the `Config`."""
    data = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML: {err}") from err
    return config_from_dict(data, overrides)


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")


# ----- validation --------------------------------------------------------------------------
def _choice(key: str, value, options) -> None:
    if value not in options:
        raise ConfigError(f"{key}: expected one of {', '.join(map(str, options))}, got {value!r}")


def _at_least(key: str, value, low) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value}")


def _check_mini_batch(t: TrainConfig) -> None:
    """`train.mini_batch` cuts each batch into chunks of that many pairs (see mixlingual.training.gradcache);
    a chunk larger than the batch would be the batch itself, which is surely a typo."""
    if t.mini_batch is None:
        return
    _at_least("train.mini_batch", t.mini_batch, 1)
    if t.mini_batch > t.batch_size:
        raise ConfigError(f"train.mini_batch: must be <= train.batch_size ({t.batch_size} pairs per rank), "
                          f"got {t.mini_batch}")


def validate(config: Config) -> None:
    """Checks that need no data. Each failure raises `ConfigError` naming the key."""
    _validate_sampling(config.sampling)
    if config.loss.temperature <= 0:
        raise ConfigError(f"loss.temperature: must be > 0, got {config.loss.temperature}")
    _validate_counts(config)
    _check_mini_batch(config.train)
    _validate_optim(config.optim)
    _validate_choices(config)
    _validate_merge(config.train)
    if config.data.train.name is None:
        raise ConfigError("data.train.name: a training dataset is required (e.g. mlqa, demo, jsonl)")
    from mixlingual.training.mining import check_remine_config

    check_remine_config(config)


def _validate_sampling(sampling) -> None:
    _choice("sampling.kind", sampling.kind, ("hybrid", "mono", "cross", "mixture"))
    _choice("sampling.schedule", sampling.schedule, SHAPES)
    _choice("sampling.language_weighting", sampling.language_weighting, ("uniform", "size", "temperature"))
    for key, value in (("sampling.alpha", sampling.alpha), ("sampling.alpha_end", sampling.alpha_end),
                       ("sampling.switch_at", sampling.switch_at)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: must be in [0, 1], got {value}")
    if sampling.kind == "mixture":
        if sampling.ratios is None:
            raise ConfigError("sampling.ratios: a mixture needs ratios, e.g. {X-X: 0.4, X-Y: 0.4, mixed: 0.2}")
        check_ratios(sampling.ratios, "sampling.ratios")
    end_key = "sampling.alpha_end" if sampling.kind == "hybrid" else "sampling.ratios_end"
    end_value = sampling.alpha_end if sampling.kind == "hybrid" else sampling.ratios_end
    if sampling.schedule != "constant" and end_value is None:
        raise ConfigError(f"sampling.schedule: '{sampling.schedule}' needs {end_key}")
    if sampling.ratios_end is not None:
        check_ratios(sampling.ratios_end, "sampling.ratios_end")
    if sampling.temperature <= 0:
        raise ConfigError(f"sampling.temperature: must be > 0, got {sampling.temperature}")


def _validate_counts(config: Config) -> None:
    """Integer settings with a lower bound."""
    train, evaluation, data, model = config.train, config.eval, config.data, config.model
    for key, value, low in (("train.batch_size", train.batch_size, 1), ("train.grad_accum", train.grad_accum, 1),
                            ("train.max_steps", train.max_steps, 0), ("train.epochs", train.epochs, 1),
                            ("train.log_every", train.log_every, 1),
                            ("train.checkpoint_every", train.checkpoint_every, 1),
                            ("train.keep_last", train.keep_last, 1), ("train.threads", train.threads, 1),
                            ("data.hard_negatives", data.hard_negatives, 0),
                            ("data.buffer_size", data.buffer_size, 1),
                            ("model.length_buckets", model.length_buckets, 1),
                            ("data.max_items", data.max_items, 1),
                            ("eval.every_steps", evaluation.every_steps, 0),
                            ("eval.patience", evaluation.patience, 1),
                            ("optim.warmup_steps", config.optim.warmup_steps, 0),
                            ("model.max_length_query", model.max_length_query, 1),
                            ("model.max_length_passage", model.max_length_passage, 1)):
        _at_least(key, value, low)


def _validate_merge(train: TrainConfig) -> None:
    """`train.merge_with_base: W` is the fine-tuned model's weight in the final merge (text task only)."""
    weight = train.merge_with_base
    if weight is None:
        return
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"train.merge_with_base: must be in [0, 1] (the fine-tuned model's weight; "
                          f"null: no merge), got {weight}")
    if train.task != "text":
        raise ConfigError(f"train.merge_with_base: only the text task merges with its base model, "
                          f"not train.task '{train.task}'")


def _validate_optim(optim) -> None:
    if not optim.lr > 0:
        raise ConfigError(f"optim.lr: must be > 0, got {optim.lr}")
    _at_least("optim.weight_decay", optim.weight_decay, 0.0)
    if not 0.0 <= optim.warmup_ratio < 1.0:
        raise ConfigError(f"optim.warmup_ratio: must be in [0, 1), got {optim.warmup_ratio}")
    if len(optim.betas) != 2 or not all(0.0 <= beta < 1.0 for beta in optim.betas):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1), got {optim.betas}")
    _choice("optim.scheduler", optim.scheduler, ("linear", "cosine", "constant"))


def _validate_choices(config: Config) -> None:
    """Settings that name one of a few options."""
    evaluation = config.eval
    _choice("train.precision", config.train.precision, ("bf16", "fp32"))
    _choice("train.device", config.train.device, ("auto", "cpu", "cuda"))
    _choice("eval.mode", evaluation.mode, ("max", "min"))
    _choice("output.overlap", config.output.overlap, ("warn", "refuse"))
    for setting in evaluation.settings:
        _choice("eval.settings", setting, ("mono", "cross", "multi"))
    if not evaluation.metric.startswith(("settings.", "rank_distance.", "per_language.")):
        raise ConfigError(f"eval.metric: expected a metrics.json path such as settings.multi.map, "
                          f"got '{evaluation.metric}'")


def validate_against_data(config: Config, items, world_size: int = 1) -> None:
    """Checks that need the loaded training items (run before any model work).

    With `data.stream`, `items` is the stream factory: the same checks read the stream once,
    keeping at most one batch worth of group names in memory.
    """
    need = config.train.batch_size * world_size
    count, present, seen_groups = 0, set(), set()
    for item in (items() if config.data.stream else items):
        count += 1
        present.update(item.queries, item.positives)
        if len(seen_groups) < need:  # enough to know whether one batch can be filled
            seen_groups.add(item.group)
    if not count:
        raise ConfigError(f"data.train: dataset '{config.data.train.name}' at {config.data.train.path} has no items")
    for lang in config.data.languages or []:
        if lang not in present:
            raise ConfigError(f"data.languages: no training data in '{lang}'; "
                              f"the data has {', '.join(sorted(present))}")
    groups = len(seen_groups)
    if need > groups:
        raise ConfigError(f"train.batch_size: {config.train.batch_size} x {world_size} rank(s) = {need} pairs per "
                          f"batch exceeds the {groups} parallel groups of the training data")
