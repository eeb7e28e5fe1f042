"""String enums for settings, whose parse error names the setting and lists the valid values."""

from __future__ import annotations

import re
from enum import Enum
from typing import TypeVar

from .errors import ClinragError

C = TypeVar("C", bound="Choice")


class Choice(str, Enum):
    """Base for setting enums: ``IndexType.parse("hnsw")``; ``-`` and ``_`` are interchangeable.

    An unknown value raises ``ClinragError("unknown index type 'x' (valid: auto, flat, …)")``; the setting's name
    comes from the class name, and ``option`` (the command-line flag it came from) prefixes the message.
    """

    @classmethod
    def parse(cls: type[C], value: str | C, *, option: str | None = None) -> C:
        if isinstance(value, cls):
            return value
        try:
            return cls(str(getattr(value, "value", value)).replace("-", "_"))
        except ValueError:
            label = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()
            valid = ", ".join(m.value for m in cls)
            where = f"{option}: " if option else ""
            raise ClinragError(f"{where}unknown {label} {value!r} (valid: {valid})") from None

    @classmethod
    def values(cls) -> str:
        """The valid values as ``a|b|c``, for help texts."""
        return "|".join(m.value for m in cls)
