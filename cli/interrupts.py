"""Ctrl-C and SIGTERM: every command exits 130 (SIGINT) or 143 (SIGTERM) with one line saying what was completed
and how to resume, so ``build && answer`` pipelines stop instead of carrying on with partial output.

A command registers, before its long work, a function that describes its progress at the moment of the interrupt
(:func:`on_interrupt`); :func:`clinrag.cli.main` prints ``interrupted: <that>`` and returns the exit code.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

EXIT_SIGINT, EXIT_SIGTERM = 130, 143

_describe: Callable[[], str] | None = None
_received: int | None = None


def on_interrupt(describe: Callable[[], str]) -> None:
    """Say what an interrupt at this point leaves behind: ``describe()`` runs when it happens (so it can count)."""
    global _describe
    _describe = describe


def message() -> str:
    """The line to print for the interrupt that just happened."""
    what = "SIGTERM" if _received == signal.SIGTERM else "Ctrl-C"
    detail = None
    if _describe is not None:
        try:
            detail = _describe()
        except Exception:  # describing the progress must never turn an interrupt into a traceback
            detail = None
    return f"interrupted ({what}): {detail or 'nothing was completed; rerun the command'}"


def exit_code() -> int:
    return EXIT_SIGTERM if _received == signal.SIGTERM else EXIT_SIGINT


def _on_sigterm(signum: int, frame: Any) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt  # unwinds like Ctrl-C: temp folders are removed, files closed


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """While a command runs: SIGTERM unwinds like Ctrl-C, and the progress description starts empty."""
    global _describe, _received
    _describe, _received = None, None
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
