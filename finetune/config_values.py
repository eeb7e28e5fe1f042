"""Turning YAML and command-line values into typed config values, with transformers' ``HfArgumentParser``.

``HfArgumentParser`` already maps every dataclass field to an argparse action (type, choices, list ``nargs``,
``true``/``false`` booleans) — for clinrag's sections and for ``trl.SFTConfig`` alike. :func:`coerce` applies the
action of one field to one value, so a YAML ``3`` and a command-line ``"3"`` end up the same, and turns whatever
argparse would reject into a one-line :class:`ConfigError` naming the key (and listing the valid values of a
choice). YAML values that are already lists or mappings pass through where the field accepts them.
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import fields
from enum import Enum
from functools import cache, lru_cache
from typing import Any, get_type_hints

from .config_schema import SECTIONS, ConfigError

_NULLS = ("none", "null", "~")


@cache
def _actions(cls: type) -> dict[str, argparse.Action]:
    from transformers import HfArgumentParser

    out: dict[str, argparse.Action] = {}
    for action in HfArgumentParser(cls)._actions:
        # The first action of a field types it; a boolean that defaults to True also gets a ``--no_<name>`` one.
        if action.dest != "help":
            out.setdefault(action.dest, action)
    return out


@lru_cache(maxsize=1)
def sft_config_class() -> type:
    from trl import (
        SFTConfig,  # imports torch: only when a key is not one of clinrag's own
    )

    return SFTConfig


@lru_cache(maxsize=1)
def sft_field_names() -> frozenset[str]:
    return frozenset(f.name for f in fields(sft_config_class()) if f.init)


@cache
def _field_types(cls: type) -> dict[str, str]:
    # From the annotations, not ``Field.type``: HfArgumentParser rewrites the latter (``X | None`` → ``X``).
    return {name: str(hint) for name, hint in get_type_hints(cls).items()}


def _describe(action: argparse.Action) -> str:
    kind = getattr(action.type, "__name__", "value")
    return {"string_to_bool": "boolean (true/false)", "str": "string"}.get(kind, kind)


def _one(action: argparse.Action, value: Any, key: str) -> Any:
    if isinstance(value, bool) and action.type in (int, float):
        raise ConfigError(f"{key}: {value!r} is not a valid {_describe(action)}")
    if action.type is int and isinstance(value, float) and value.is_integer():
        value = int(value)  # YAML 3.0 for an int field
    text = value.value if isinstance(value, Enum) else value
    if isinstance(text, bool):
        text = "true" if text else "false"
    try:
        out = action.type(str(text)) if action.type is not None else text
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        raise ConfigError(f"{key}: {value!r} is not a valid {_describe(action)}") from None
    if action.choices is not None and out not in action.choices:
        valid = ", ".join(str(getattr(c, "value", c)) for c in action.choices)
        raise ConfigError(f"{key}: {value!r} is not valid (valid: {valid})")
    return out


def coerce(cls: type, name: str, value: Any, key: str) -> Any:
    """``value`` (a YAML value or a command-line string) as field ``name`` of dataclass ``cls`` holds it."""
    action = _actions(cls)[name]
    hint = _field_types(cls)[name]
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
        if "None" in hint or action.default is None:
            return None
        raise ConfigError(f"{key}: must not be null")
    if isinstance(value, dict):
        if "dict" in hint:
            return value
        raise ConfigError(f"{key}: expected a single value or a list, got a mapping")
    if action.nargs in ("+", "*"):
        items = value if isinstance(value, (list, tuple)) else [v.strip() for v in str(value).split(",") if v.strip()]
        return [_one(action, v, key) for v in items]
    if isinstance(value, (list, tuple)):
        if "list" in hint:
            return list(value)
        raise ConfigError(f"{key}: expected a single {_describe(action)}, got a list")
    out = _one(action, value, key)
    enum_cls = _enum_classes(cls).get(name)
    return enum_cls(out) if enum_cls is not None else out  # clinrag's Choice members, not bare strings


@cache
def _enum_classes(cls: type) -> dict[str, type]:
    return {k: h for k, h in get_type_hints(cls).items() if isinstance(h, type) and issubclass(h, Enum)}


def coerce_key(key: str, value: Any) -> Any:
    """Coerce the value of a full key (``train.epochs``, or an SFTConfig field such as ``train.report_to``)."""
    section, _, name = key.partition(".")
    cls = SECTIONS[section]
    if any(f.name == name for f in fields(cls)) and name != "sft":
        return coerce(cls, name, value, key)
    return coerce(sft_config_class(), name, value, key)


def suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.75)
    return f" (did you mean {', '.join(close)}?)" if close else ""
