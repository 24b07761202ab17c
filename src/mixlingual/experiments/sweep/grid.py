"""Sweep grids: parse `--grid` specs, expand them (with named recipes and seeds) into cells.

Grid syntax (one `--grid` per key; several `--grid`s form a product)::

    --grid 'sampling.alpha=0,0.25,0.5,0.75,1'          # five values
    --grid 'sampling.ratios=[0.5,0.25,0.25],[0.4,0.4,0.2]'   # two 3-way ratio lists
    --grid 'sampling.ratios=[0.5,0.25,0.25];[0.4,0.4,0.2]'   # the same, ';' separated
    --grid 'sampling.schedule={x-x: 0.3, hybrid: 0.7};{hybrid: 1.0}'

Values are split at top-level separators only (commas inside [...], {...} or quotes never split a
value). When a spec contains a top-level ';' the values are split on ';' alone, so a value may
then hold bare commas. Each value is read as YAML (`0.5` -> float, `[0.5,0.25,0.25]` -> list,
`x-x` -> string, `true` -> bool, `null` -> None).

A *recipe* is a named set of overrides applied together (e.g. `x-x-then-hybrid: {sampling.schedule:
..., sampling.alpha: 0.5}`); recipes and grid points form a product too. A *cell* is one
(recipe, grid point, seed): one training run plus its evaluations, in its own folder named by a
stable slug of its overrides and seed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from mixlingual.errors import ConfigError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
MAX_SLUG = 100


def split_top_level(text: str, separators: str) -> list[str]:
    """Split `text` at `separators` that are outside brackets, braces and quotes."""
    parts, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch in separators and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if depth != 0 or quote:
        raise ConfigError(f"unbalanced brackets or quotes in grid values '{text}'")
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_value(text: str, *, key: str) -> Any:
    """One grid value read as YAML; the error names the key."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"grid key '{key}': value '{text}' is not valid YAML ({err})") from err


def parse_grid_spec(spec: str) -> tuple[str, list[Any]]:
    """'key=v1,v2,...' -> (key, [v1, v2, ...])."""
    key, sep, values_text = spec.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise ConfigError(f"grid spec '{spec}' must look like 'section.key=v1,v2,...'")
    has_semicolon = len(split_top_level(values_text, ";")) > 1
    raw = split_top_level(values_text, ";" if has_semicolon else ",")
    if any(not r for r in raw):
        raise ConfigError(f"grid key '{key}': empty value in '{values_text}'")
    values = [parse_value(r, key=key) for r in raw]
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise ConfigError(f"grid key '{key}': a value is repeated in '{values_text}'")
    return key, values


def format_override(value: Any) -> str:
    """A value as the text of a `--set key=value` (YAML-readable: JSON for non-strings)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _slug_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_slug_value(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{k}{_slug_value(v)}" for k, v in value.items())
    return str(value)


def make_slug(parts: list[str]) -> str:
    """Join parts into a folder-safe name; long names keep a readable head plus a hash."""
    full = "__".join(parts)
    slug = _SLUG_UNSAFE.sub("_", full)
    if len(slug) > MAX_SLUG:
        digest = hashlib.sha1(full.encode("utf-8")).hexdigest()[:8]
        slug = slug[: MAX_SLUG - 9] + "-" + digest
    return slug


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: a recipe name (may be ''), its overrides in order, and a seed."""

    recipe: str
    overrides: tuple[tuple[str, Any], ...]
    seed: int
    recipe_size: int = 0     # how many leading overrides come from the recipe (named by it)

    @property
    def group(self) -> str:
        """The name shared by all seeds of this cell (recipe + grid values)."""
        parts = [self.recipe] if self.recipe else []
        parts += [f"{k}={_slug_value(v)}" for k, v in self.overrides[self.recipe_size:]]
        return make_slug(parts or ["base"])

    @property
    def slug(self) -> str:
        return make_slug([self.group, f"seed={self.seed}"])

    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


def expand_cells(grid: list[tuple[str, list[Any]]], *, recipes: dict[str, dict] | None = None,
                 seeds: list[int]) -> list[Cell]:
    """Product of recipes x grid values x seeds, in a stable order (recipes first, seeds last).

    A recipe's overrides come first; a grid key also set by a recipe is an error (ambiguous).
    """
    if not seeds:
        raise ConfigError("seeds: need at least one seed")
    keys = [k for k, _ in grid]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"grid: a key is given twice in {keys}")
    recipe_items = list((recipes or {"": {}}).items())
    cells: list[Cell] = []
    for name, recipe in recipe_items:
        if not isinstance(recipe, dict):
            raise ConfigError(f"recipes.{name}: expected a mapping of key: value overrides")
        clash = set(recipe) & set(keys)
        if clash:
            raise ConfigError(f"recipes.{name}: sets grid key(s) {sorted(clash)}; drop one of them")
        for point in itertools.product(*(values for _, values in grid)):
            overrides = tuple(recipe.items()) + tuple(zip(keys, point))
            cells.extend(Cell(name, overrides, seed, len(recipe)) for seed in seeds)
    slugs = [c.slug for c in cells]
    if len(set(slugs)) != len(slugs):
        dup = sorted({s for s in slugs if slugs.count(s) > 1})
        raise ConfigError(f"two cells get the same folder name {dup}; rename a recipe or value")
    return cells
