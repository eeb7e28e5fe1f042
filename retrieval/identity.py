"""Which embedder's weights an index's vectors came from: a path and a sha256 over the weight files.

Two embedders with the same name can hold different weights (a tuned model written into the same folder again,
a hub model updated upstream); vectors from one searched with queries from the other give confident nonsense.
The manifest therefore records ``path`` and ``weights_sha256`` (sha256 over every ``*.safetensors`` file of the
model folder, relative paths included, in sorted order), and :func:`check_identity` compares them.
"""

from __future__ import annotations

import hashlib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from clinrag.core.errors import IndexLoadError

WEIGHT_PATTERNS = ("*.safetensors",)


class LegacyIndexWarning(UserWarning):
    """An index written before embedder hashes were recorded: its embedder's weights cannot be verified."""


@lru_cache(maxsize=16)
def _digest(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str | None:
    del stamp  # part of the cache key only: a rewritten file changes it
    root = Path(folder)
    files = sorted(p for pattern in WEIGHT_PATTERNS for p in root.rglob(pattern) if p.is_file())
    if not files:
        return None
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\x00")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def weights_sha256(path: str | Path) -> str | None:
    """sha256 over a model folder's weight files (None when ``path`` is not a local folder holding any)."""
    root = Path(path)
    if not root.is_dir():
        return None
    files = sorted(p for pattern in WEIGHT_PATTERNS for p in root.rglob(pattern) if p.is_file())
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _digest(str(root.resolve()), stamp)


def identity(path: str | Path) -> dict[str, Any]:
    """``{"path": absolute folder (or the name, for a hub id), "weights_sha256": hex or None}``."""
    root = Path(path)
    return {"path": str(root.resolve()) if root.is_dir() else str(path), "weights_sha256": weights_sha256(root)}


def check_identity(index_config: dict[str, Any], embedder_config: dict[str, Any], where: str = "index") -> None:
    """Raise :class:`IndexLoadError` when both configs record weight hashes and they differ."""
    built, given = index_config.get("weights_sha256"), embedder_config.get("weights_sha256")
    if built and given and built != given:
        raise IndexLoadError(f"{where} was built with embedder {index_config.get('name')!r} (weights "
                             f"{built[:12]}…), but the embedder given has weights {given[:12]}… "
                             f"({embedder_config.get('path')}); search it with the embedder it was built with, "
                             f"or rebuild it with `clinrag index build --embedder …`")


def warn_if_legacy(index_config: dict[str, Any], where: str) -> None:
    if "weights_sha256" not in index_config:
        warnings.warn(f"{where}: written before clinrag recorded the embedder's weight hash; the embedder "
                      f"{index_config.get('name')!r} cannot be verified (rebuild the index to record it)",
                      LegacyIndexWarning, stacklevel=3)
