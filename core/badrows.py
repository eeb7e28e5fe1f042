"""``--on-bad-rows error|skip`` (pandas' ``on_bad_lines``): what a loader does with one bad row of a large file.

``error`` (the default) raises the row's one-line error. ``skip`` drops the row and reports it — file, line, field
and reason — through ``report``, and :meth:`BadRows.summary` gives the count for the end of the run: a skipped
row is never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .choices import Choice
from .errors import ClinragError

log = logging.getLogger("clinrag")


class BadRowAction(Choice):
    error = "error"
    skip = "skip"


@dataclass
class BadRows:
    """The policy one command applies to every file it reads, and the rows it skipped."""

    mode: BadRowAction = BadRowAction.error
    report: Callable[[str], None] | None = None
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, mode: str | BadRowAction | None, report: Callable[[str], None] | None = None) -> BadRows:
        return cls(BadRowAction.parse(mode or BadRowAction.error, option="--on-bad-rows"), report)

    def handle(self, error: ClinragError) -> None:
        """Raise ``error`` (mode ``error``), or record and report it as a skipped row (mode ``skip``)."""
        if self.mode is BadRowAction.error:
            raise error
        self.skipped.append(str(error))
        message = f"skipped bad row: {error}"
        (self.report or log.warning)(message)

    def summary(self) -> str | None:
        """``"skipped 3 bad rows (--on-bad-rows skip)"``, or None when none was skipped."""
        n = len(self.skipped)
        return f"skipped {n} bad row{'s' if n != 1 else ''} (--on-bad-rows skip)" if n else None


def handle_bad_row(bad_rows: BadRows | None, error: ClinragError) -> None:
    """``bad_rows.handle(error)``; without a policy the error is raised (the default)."""
    if bad_rows is None:
        raise error
    bad_rows.handle(error)
