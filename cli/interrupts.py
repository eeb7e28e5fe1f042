"""Ctrl-C and SIGTERM: every command exits 130 (SIGINT) or 143 (SIGTERM) with one line saying what was completed
and how to resume, so ``build && answer`` pipelines stop instead of carrying on with partial output.

A command registers, before its long work, a function that describes its progress at the moment of the interrupt
(:func:`on_interrupt`); :func:`clinrag.cli.main` prints ``interrupted: <that>`` and returns the exit code.

Both signals raise ``KeyboardInterrupt`` in the main thread, which unwinds the command (temp folders removed, files
closed). Python drops an exception raised inside a finalizer (a weakref callback or ``__del__`` that happened to run
when the signal arrived; torch runs many), so a signal could be lost and the command run to the end: when that
happens the signal is delivered again a moment later (:func:`_unraisable`), and long loops can also call
:func:`check` at points where stopping is safe (``finetune`` does between training steps).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

EXIT_SIGINT, EXIT_SIGTERM = 130, 143
REDELIVER_AFTER_S = 0.05

_describe: Callable[[], str] | None = None
_received: int | None = None
_active = False  # between handling()'s start and end: a re-delivery after that would hit the default handler


def on_interrupt(describe: Callable[[], str]) -> None:
    """Say what an interrupt at this point leaves behind: ``describe()`` runs when it happens (so it can count)."""
    global _describe
    _describe = describe


def pending() -> bool:
    """Whether Ctrl-C or SIGTERM has arrived during this command."""
    return _received is not None


def check() -> None:
    """Raise the interrupt if a signal arrived but its exception was lost (see the module docstring)."""
    if _received is not None:
        raise KeyboardInterrupt


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


def _on_signal(signum: int, frame: Any) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt  # unwinds: temp folders are removed, files closed


def _redeliver(signum: int) -> None:
    if _active:
        os.kill(os.getpid(), signum)


def _unraisable(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    def hook(args: Any) -> None:
        if _received is not None and args.exc_type is not None and issubclass(args.exc_type, KeyboardInterrupt):
            # Our interrupt was raised inside a finalizer and dropped: deliver it again once that code has
            # returned, instead of printing "Exception ignored … KeyboardInterrupt" and carrying on.
            threading.Timer(REDELIVER_AFTER_S, _redeliver, (_received,)).start()
            return
        previous(args)

    return hook


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """While a command runs: Ctrl-C and SIGTERM unwind it (recording which), and the progress description starts
    empty."""
    global _describe, _received, _active
    _describe, _received = None, None
    previous: dict[int, Any] = {}
    hook = sys.unraisablehook
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
        sys.unraisablehook = _unraisable(hook)
        _active = True
    try:
        yield
    finally:
        _active = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous:
            sys.unraisablehook = hook
