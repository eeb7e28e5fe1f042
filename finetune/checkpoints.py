"""Which Trainer checkpoints a resume may use: a kill during a save leaves a ``checkpoint-N`` folder without its
``trainer_state.json`` (transformers writes that file last), and ``get_last_checkpoint`` would pick it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

_STEP = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
INCOMPLETE_SENTINEL = "checkpoint-is-incomplete.txt"  # transformers' JIT checkpointing marks a save in progress


def _steps(ckpt_dir: Path) -> list[tuple[int, Path]]:
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if p.is_dir() and (m := _STEP.match(p.name))]
    return sorted(found, reverse=True)


def is_complete(folder: Path) -> bool:
    """Whether a checkpoint folder was saved to the end: its trainer state exists and reads as JSON."""
    if (folder / INCOMPLETE_SENTINEL).exists():
        return False
    try:
        json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(ckpt_dir: Path) -> tuple[int, Path] | None:
    """The highest-step checkpoint saved to the end, as ``(step, folder)``, or None."""
    return next(((step, p) for step, p in _steps(Path(ckpt_dir)) if is_complete(p)), None)


def drop_incomplete(ckpt_dir: Path, log: Callable[[str], None]) -> None:
    """Remove checkpoint folders newer than the last complete one (cut short by a kill while saving), saying so;
    otherwise the Trainer would resume from, or rotate against, half a checkpoint."""
    last = last_complete_checkpoint(ckpt_dir)
    for step, folder in _steps(Path(ckpt_dir)):
        if last is not None and step <= last[0]:
            break
        if not is_complete(folder):
            log(f"note: {folder} was cut short while saving (no complete {STATE_FILE}); removed")
            shutil.rmtree(folder)
