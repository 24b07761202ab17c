"""What a loader kept and what it skipped, so that nothing a user gave disappears silently.

Every loader returns its skip counts with its records: `load_parallel` returns an `ItemList`
(a plain `list` of `ParallelItem` with a `.report` attribute) and `load_collection` stores the
report's dict in `Collection.meta["load_report"]`. Loaders also log one warning per load that
skipped anything.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

logger = logging.getLogger("mixlingual.data")


@dataclass
class LoadReport:
    """Counts of loaded records and of skipped ones per reason (with the first message of each).

    `source` names what was read (a file or folder); `notes` holds dataset-specific counts that
    are not skips (e.g. how many answers had no text in MLQA).
    """

    source: str | None = None
    loaded: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, message: str) -> None:
        """Count one skipped record under `reason`; keep the first message as an example."""
        self.skipped[reason] += 1
        self.examples.setdefault(reason, message)

    def note(self, key: str, n: int = 1) -> None:
        self.notes[key] = self.notes.get(key, 0) + n

    def summary(self) -> str:
        """One line: what was loaded and why anything was skipped."""
        text = f"{self.source or 'data'}: loaded {self.loaded}"
        if self.skipped:
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.skipped.items()))
            text += f", skipped {self.total_skipped} ({reasons})"
        if self.notes:
            text += "; " + ", ".join(f"{k}={v}" for k, v in sorted(self.notes.items()))
        return text

    def log(self) -> None:
        """Warn when something was skipped (first example of each reason), else log at info."""
        if self.skipped:
            logger.warning(self.summary())
            for reason, example in sorted(self.examples.items()):
                logger.warning("  first %s: %s", reason, example)
        else:
            logger.info(self.summary())

    def to_dict(self) -> dict:
        return {"source": self.source, "loaded": self.loaded, "skipped": dict(self.skipped),
                "examples": dict(self.examples), "notes": dict(self.notes)}


class ItemList(list):
    """A list of `ParallelItem` that also carries the `LoadReport` of the load that made it."""

    def __init__(self, items=(), report: LoadReport | None = None):
        super().__init__(items)
        self.report = report if report is not None else LoadReport(loaded=len(self))
