"""File output shared by every command: folders are written whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """clinrag's per-machine cache (converted models, the offline tokenizer, downloads), outside any clone:
    ``$CLINRAG_CACHE``, else ``$XDG_CACHE_HOME/clinrag``, else ``~/.cache/clinrag``."""
    root = os.environ.get("CLINRAG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clinrag")
    return Path(root)


def atomic_dir_write(out: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)`` then move ``tmp_dir`` to ``out`` (replacing it); clean up on failure."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; an output folder is meant to be shared
        write(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
