"""Errors caused by what a user gave (files, configs, arguments).

The CLI prints them as one line and exits with status 2; library users can catch
`MixlingualError`. Each message names the file, line, field or key and what was expected.
"""

from __future__ import annotations


class MixlingualError(ValueError):
    """Base class for user-facing errors."""


class DataError(MixlingualError):
    """A data file is malformed. Carries where: file, 1-based line and field (each optional)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        if field:
            prefix += f"field '{field}': "
        super().__init__(prefix + message)


class ConfigError(MixlingualError):
    """A configuration key has a bad value; the message names the key."""


class ModelError(MixlingualError):
    """A model name or folder cannot be resolved or loaded."""


class CheckpointError(MixlingualError):
    """A training checkpoint is damaged (truncated or corrupted files); the message names them."""
