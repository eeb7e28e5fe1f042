"""How every command reads option values, so each kind of value is parsed one way and its errors name the flag.

* ``KEY=VALUE`` options (``--option``, ``--strategy-option``, ``--filter``): :func:`parse_key_values`; a value is
  JSON when it parses as JSON (``n=3``, ``refine=true``, ``names=["a","b"]``), else plain text (``name=x``).
* String enums (``--mode``, ``--format``, ``--index`` …) are declared as ``str`` and read with
  :meth:`clinrag.core.choices.Choice.parse` (``option=`` the flag), whose one-line error lists the valid values.
* Plugin names (``--strategy``, ``--generator``) are checked by their registry, whose error lists the installed ones.

Only the standard library and ``clinrag.core`` are imported, so ``clinrag --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from clinrag.core.errors import ClinragError


def split_key_value(pair: str, option: str) -> tuple[str, str]:
    """``"n=3"`` → ``("n", "3")``; anything without ``KEY=`` is a one-line error naming ``option``."""
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise ClinragError(f"{option} {pair!r}: expected KEY=VALUE")
    return key.strip(), value


def decode_value(text: str) -> Any:
    """``text`` as JSON (number, true/false/null, list, object, quoted string), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(pairs: Iterable[str] | None, option: str) -> dict[str, Any]:
    """``["n=3", "temperature=0.2", "name=x"]`` → ``{"n": 3, "temperature": 0.2, "name": "x"}`` (a repeated key:
    the last wins)."""
    return {key: decode_value(value) for key, value in (split_key_value(p, option) for p in pairs or [])}


def parse_filters(pairs: Iterable[str] | None, option: str = "--filter") -> dict[str, list[Any]]:
    """Metadata filters ``KEY=VALUE``: ``a|b`` (or a JSON list) accepts any of the values, and each value matches
    metadata stored as JSON (``year=2020`` matches 2020) or as text (``"2020"``)."""
    out: dict[str, list[Any]] = {}
    for pair in pairs or []:
        key, value = split_key_value(pair, option)
        accepted: list[Any] = []
        for text in value.split("|"):
            decoded = decode_value(text)
            for v in [*(decoded if isinstance(decoded, list) else [decoded]), text]:
                # metadata values are compared by hash: objects (JSON {...}) can never match one
                if (v is None or isinstance(v, (str, int, float))) and v not in accepted:
                    accepted.append(v)
        out[key] = accepted
    return out


def generator_options(model: str | None, adapter: str | None, base_url: str | None, max_new_tokens: int | None,
                      extra: list[str] | None) -> dict[str, Any]:
    """The generator's keyword options from the common flags plus ``--option KEY=VALUE``."""
    opts = parse_key_values(extra, "--option")
    for key, value in (("model", model), ("adapter", adapter), ("base_url", base_url),
                       ("max_new_tokens", max_new_tokens)):
        if value is not None:
            opts[key] = value
    return opts


BAD_ROWS_HELP = ("A row that fails validation: error (stop; default) or skip (drop it, report its file, line, field "
                 "and reason, and the count at the end).")


def report_line(message: str) -> None:
    """A progress or warning line on stderr (stdout carries the command's output)."""
    import typer

    typer.echo(message, err=True)
