"""A registry keyed by lowercase unique names, filled from an entry-point group.

Entry points are read once per process and cached; ``register`` adds in-process plugins (tests,
notebooks) under the same rules. Loading a plugin imports only its own module.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from clinrag.core.errors import PluginError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


class Registry(Generic[T]):
    def __init__(self, group: str, kind: str) -> None:
        self.group, self.kind = group, kind
        self._targets: dict[str, Any] | None = None  # name -> EntryPoint or class

    def _load_table(self) -> dict[str, Any]:
        if self._targets is None:
            table: dict[str, Any] = {}
            for ep in entry_points(group=self.group):
                name = ep.name
                if not _NAME.match(name):
                    raise PluginError(f"{self.kind} plugin name {name!r} ({ep.value}) must be lowercase "
                                      f"letters, digits, '_' or '-'")
                if name in table and getattr(table[name], "value", None) != ep.value:
                    raise PluginError(f"two {self.kind} plugins are named {name!r}: "
                                      f"{table[name].value} and {ep.value}")
                table[name] = ep
            self._targets = table
        return self._targets

    def names(self) -> list[str]:
        return sorted(self._load_table())

    def register(self, name: str, target: Any) -> None:
        """Register a class (or factory) in-process under ``name``."""
        if not _NAME.match(name):
            raise PluginError(f"{self.kind} name {name!r} must be lowercase letters, digits, '_' or '-'")
        table = self._load_table()
        if name in table and table[name] is not target:
            raise PluginError(f"a {self.kind} named {name!r} is already registered")
        table[name] = target

    def get_class(self, name: str) -> Any:
        table = self._load_table()
        key = name.strip().lower()
        if key not in table:
            raise PluginError(f"unknown {self.kind} {name!r} (valid: {', '.join(sorted(table)) or 'none installed'})")
        target = table[key]
        if hasattr(target, "load") and hasattr(target, "group"):
            try:
                target = target.load()
            except Exception as exc:  # a broken third-party plugin must not look like "unknown name"
                raise PluginError(f"{self.kind} {key!r} failed to load from {table[key].value}: {exc}") from exc
            table[key] = target
        return target

    def create(self, name: str, **kwargs: Any) -> T:
        """An instance of ``name`` built with ``kwargs``; an option it does not take, or one it lacks, is one line
        listing the options it takes (never a TypeError traceback)."""
        import inspect

        cls = self.get_class(name)
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):  # builtins and some C types have none: let the call speak
            return cls(**kwargs)
        params = signature.parameters.values()
        takes = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            unknown = sorted(set(kwargs) - set(takes))
            if unknown:
                raise PluginError(f"{self.kind} {name!r} takes no option {', '.join(map(repr, unknown))} "
                                  f"(valid: {', '.join(takes) or 'none'})")
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise PluginError(f"{self.kind} {name!r}: {exc} (valid options: {', '.join(takes) or 'none'})") from None
        return cls(**kwargs)
