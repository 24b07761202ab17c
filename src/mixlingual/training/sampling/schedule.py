"""Batch-kind ratios that may change over training: constant, linear or step schedules.

A `RatioSchedule` maps a global training step to probabilities over the batch kinds
{"X-X", "X-Y", "mixed"}. The hybrid sampler's alpha is the two-kind case:
``RatioSchedule.hybrid(alpha)`` = {"X-X": alpha, "X-Y": 1 - alpha}.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixlingual.errors import ConfigError

KINDS = ("X-X", "X-Y", "mixed")
SHAPES = ("constant", "linear", "step")


def check_ratios(ratios: dict[str, float], key: str = "sampling.ratios") -> dict[str, float]:
    """Validate kind -> probability: known kinds, values in [0, 1], summing to 1 (within 1e-6)."""
    if not isinstance(ratios, dict) or not ratios:
        raise ConfigError(f"{key}: expected a mapping of batch kinds {KINDS} to probabilities, got {ratios!r}")
    for kind, value in ratios.items():
        if kind not in KINDS:
            raise ConfigError(f"{key}: unknown batch kind '{kind}'; expected one of {', '.join(KINDS)}")
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"{key}.{kind}: expected a probability in [0, 1], got {value!r}")
    total = sum(float(v) for v in ratios.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"{key}: ratios must sum to 1, they sum to {total:g} ({ratios})")
    return {k: float(v) for k, v in ratios.items()}


@dataclass
class RatioSchedule:
    """Kind probabilities over training.

    Attributes:
        start: ratios at step 0 (and throughout, for "constant").
        end: ratios at `total_steps` ("linear") or after the switch ("step").
        shape: "constant" | "linear" (interpolate start -> end) | "step" (start, then end).
        total_steps: the training length the schedule is laid over (needed unless constant).
        switch_at: for "step", the fraction of `total_steps` at which `end` takes over.
    """

    start: dict[str, float]
    end: dict[str, float] | None = None
    shape: str = "constant"
    total_steps: int = 0
    switch_at: float = 0.5

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ConfigError(f"sampling.schedule: expected one of {', '.join(SHAPES)}, got '{self.shape}'")
        self.start = check_ratios(self.start)
        if self.shape != "constant":
            if self.end is None:
                raise ConfigError(f"sampling.schedule: a '{self.shape}' schedule needs end ratios "
                                  f"(sampling.alpha_end or sampling.ratios_end)")
            self.end = check_ratios(self.end, "sampling.ratios_end")
            if self.total_steps < 1:
                raise ConfigError("train.max_steps: a scheduled ratio needs the number of training steps")
            if not 0.0 <= self.switch_at <= 1.0:
                raise ConfigError(f"sampling.switch_at: expected a fraction in [0, 1], got {self.switch_at}")

    @classmethod
    def hybrid(cls, alpha: float, alpha_end: float | None = None, shape: str = "constant",
               total_steps: int = 0, switch_at: float = 0.5) -> "RatioSchedule":
        """X-X with probability alpha, X-Y otherwise; alpha may move to `alpha_end` over training."""
        for key, value in (("sampling.alpha", alpha), ("sampling.alpha_end", alpha_end)):
            if value is not None and (not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0):
                raise ConfigError(f"{key}: expected a probability in [0, 1], got {value!r}")
        end = None if alpha_end is None else {"X-X": alpha_end, "X-Y": 1.0 - alpha_end}
        return cls({"X-X": alpha, "X-Y": 1.0 - alpha}, end, shape, total_steps, switch_at)

    def at(self, step: int) -> dict[str, float]:
        """Ratios at global training `step`."""
        if self.shape == "constant" or self.end is None:
            return self.start
        progress = min(1.0, max(0.0, step / self.total_steps))
        if self.shape == "step":
            return self.end if progress >= self.switch_at else self.start
        kinds = set(self.start) | set(self.end)
        return {k: (1 - progress) * self.start.get(k, 0.0) + progress * self.end.get(k, 0.0) for k in kinds}

    def kinds_used(self) -> set[str]:
        """Kinds with a non-zero probability at some point of the schedule."""
        used = {k for k, v in self.start.items() if v > 0}
        if self.shape != "constant" and self.end:
            used |= {k for k, v in self.end.items() if v > 0}
        return used
