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


class PluginContractError(ClinragError, ValueError):
    """A strategy or generator broke its contract: served no sub-question for a question, named an unknown fusion,
    returned the wrong type or count. The message names the plugin (when known) and what it broke."""

    def __init__(self, kind: str, name: str | None, broke: str) -> None:
        self.kind, self.name, self.broke = kind, name, broke
        who = f"{kind} {name!r}" if name else f"a {kind}"
        super().__init__(f"{who} broke its contract: {broke}")

    def naming(self, name: str) -> PluginContractError:
        """This error with the plugin's name filled in (raised where the plugin was not known, e.g. a dataclass)."""
        return self if self.name else PluginContractError(self.kind, name, self.broke)
