"""Select and confirm splits compared by what they contain, before any training.

The path rules of `selection.check_roles` catch one folder given both roles; they cannot see a
copy of the same files in another folder (the dev files with their articles reordered, or the
full XQuAD-R holding the dev half), where a sweep would choose and confirm its recipe on the
same questions. So every select and confirm split whose data is on disk is loaded once, as its
evaluation will load it (the benchmark's loader with the entry's `options`; nothing is
encoded), and each select / confirm pair is compared on

* **query group ids**, within one benchmark: a loader's group ids name its parallel questions
  (XQuAD-R / MLQA QA ids), while two loaders' ids are unrelated (sib200 and ntrex both number
  their lines);
* **candidate texts**, for every pair, normalized as the train/eval overlap check does
  (`overlap.normalize_text`: NFKC, casefold, punctuation and symbols dropped), so a copy
  converted to another format is caught too.

Any shared id or text refuses the sweep with one line naming it and both `eval` labels. The
split's `--langs` restriction, if any, is not applied: a larger split can only find more overlap.
A split whose path does not exist (data on another machine, an ir_datasets id) is left out with
a warning: it is then checked by path only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mixlingual.errors import ConfigError, MixlingualError
from mixlingual.experiments.sweep.cells import EvalSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitContent:
    """What one evaluation split holds: its query group ids and normalized candidate texts
    (dicts as ordered sets: the first shared one named is the first in the split's order; the
    values keep one original text for the message)."""

    benchmark: str
    groups: dict[str, None]
    texts: dict[str, str]


def load_split_content(spec: EvalSpec) -> SplitContent | None:
    """The split's content, or None (with a warning) when its data is not on disk."""
    from mixlingual.data import registry
    from mixlingual.data.overlap import normalize_text

    if not spec.path or not Path(spec.path).exists():
        logger.warning("eval %s: %s not found here: its select/confirm disjointness is checked by path only",
                       spec.label, spec.path)
        return None
    try:
        collection = registry.load_collection(spec.benchmark, spec.path, **spec.options)
    except MixlingualError as err:
        raise ConfigError(f"eval {spec.label} (role {spec.role}): cannot load {spec.describe()} to compare "
                          f"the select and confirm splits: {err}") from err
    groups = dict.fromkeys(q.group for q in collection.queries)
    texts: dict[str, str] = {}
    for candidate in collection.candidates:
        key = normalize_text(candidate.text)
        if key:                               # text of punctuation only names nothing
            texts.setdefault(key, candidate.text)
    return SplitContent(spec.benchmark, groups, texts)


def shared_content(select: SplitContent, confirm: SplitContent) -> str | None:
    """What the two splits share, as a phrase for the error (None: nothing)."""
    if select.benchmark == confirm.benchmark:
        groups = [g for g in select.groups if g in confirm.groups]
        if groups:
            return f"query group {groups[0]!r} is in both ({len(groups)} shared groups)"
    texts = [t for t in select.texts if t in confirm.texts]
    if texts:
        return f"candidate text {select.texts[texts[0]]!r} is in both ({len(texts)} shared normalized texts)"
    return None


def check_disjoint_content(select: list[EvalSpec], confirm: list[EvalSpec]) -> None:
    """Refuse any select / confirm pair whose loaded contents overlap (see the module docstring)."""
    contents = {spec.label: load_split_content(spec) for spec in [*select, *confirm]}
    for s in select:
        for c in confirm:
            a, b = contents[s.label], contents[c.label]
            reason = shared_content(a, b) if a is not None and b is not None else None
            if reason:
                raise ConfigError(f"eval: {s.label} (role select, {s.describe()}) and {c.label} (role confirm, "
                                  f"{c.describe()}) share data: {reason}; select and confirm on disjoint "
                                  "questions")
