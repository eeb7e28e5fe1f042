"""Cached lower-precision copies of a float32 model folder, so a bfloat16 load is a memory map, not a conversion.

Loading float32 safetensors with ``dtype=bfloat16`` makes transformers read every float32 page and convert it on
*each* command: for the 0.5B Qwen stand-in (2.5 GB of float32) that is the time of reading 2.5 GB and a peak
resident set of ~4.1 GB (the mapped float32 file plus the bfloat16 copy), over the 2.5 GB the CPU path must stay
under. So the first such load writes a bfloat16 copy once, ``$CLINRAG_CACHE/converted/<key>-bfloat16/`` (key: the
sha256 of the folder's weight files, each hashed once and remembered per path, size and mtime), and later loads
map that 1.3 GB folder: about 1.7 GB resident while answering.

Only float32 folders are copied, only into bfloat16 or float16; anything else loads as it is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from clinrag.core.io import atomic_dir_write, cache_dir

from .gguf import DONE_MARKER, file_sha256, is_converted

#: Target dtypes worth a cached copy (half the bytes of float32 to read per token).
COPY_DTYPES = ("bfloat16", "float16")


def stored_dtype(folder: Path) -> str | None:
    """The dtype config.json says the weights are stored in (``dtype``, or the older ``torch_dtype``)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    return str(value) if value else None


def weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def copy_dir(folder: Path, dtype: str) -> Path:
    """Where the ``dtype`` copy of ``folder`` lives (whether or not it exists yet)."""
    h = hashlib.sha256()
    for f in weight_files(folder):
        h.update(f.name.encode("utf-8") + b"\0" + file_sha256(f).encode("ascii") + b"\0")
    return cache_dir() / "converted" / f"{h.hexdigest()}-{dtype}"


def wants_copy(folder: Path, dtype: str) -> bool:
    """True for a float32 safetensors folder asked for in a dtype that a cached copy serves."""
    return dtype in COPY_DTYPES and stored_dtype(folder) == "float32" and bool(weight_files(folder))


def ensure_copy(folder: str | Path, dtype: str, *, log: Any = None) -> Path:
    """The cached ``dtype`` copy of a float32 model folder, written the first time (model files, tokenizer,
    chat template: every file but the weights is copied as it is)."""
    import time

    import torch
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    out = copy_dir(folder, dtype)
    if is_converted(out):
        return out
    start = time.perf_counter()
    (log or _stderr)(f"writing a {dtype} copy of {folder} once (later loads map it): {out}")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype), use_safetensors=True)

    def write(tmp: Path) -> None:
        for f in folder.iterdir():
            if f.is_file() and not f.name.endswith(".safetensors") and f.name not in (
                    DONE_MARKER, "model.safetensors.index.json"):
                shutil.copy2(f, tmp / f.name)
        model.save_pretrained(tmp, safe_serialization=True)
        record = {"source": str(folder), "dtype": dtype, "seconds": round(time.perf_counter() - start, 1)}
        (tmp / DONE_MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    try:
        atomic_dir_write(out, write, kind="dtype-copy")
    except FileExistsError:  # another process wrote the same copy first
        if not is_converted(out):
            raise
    return out


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
