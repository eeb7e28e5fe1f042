"""Errors a user can act on: each names where the problem is (file, line or row, field)."""

from __future__ import annotations


class ClinragError(Exception):
    """Base class for errors the CLI prints as one clear line instead of a traceback."""


class CaseError(ClinragError, ValueError):
    """A case file (or one row of it) does not match the case schema."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None, kind: str = "line") -> None:
        self.source, self.line, self.field, self.kind = source, line, field, kind
        self.reason = message
        where = []
        if source:
            where.append(str(source))
        if line is not None:
            where.append(f"{kind} {line}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}")


class IndexLoadError(ClinragError):
    """An index folder is missing, corrupted, foreign or built with another embedder."""


class PluginError(ClinragError, LookupError):
    """A strategy or generator name is unknown or its plugin failed to load."""


class ModelLoadError(ClinragError, RuntimeError):
    """A model could not be loaded (offline, missing files, wrong format)."""
