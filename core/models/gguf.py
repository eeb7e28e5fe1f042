"""GGUF files as transformers models: read the header, convert once, then load the cached safetensors folder.

transformers de-quantises a GGUF on *every* ``from_pretrained`` (about a minute for a 0.5B model on two cores,
~20 s for SmolLM2-135M). So the first load converts the file into a safetensors folder keyed by the file's
sha256 — ``$CLINRAG_CACHE/converted/<sha256>/`` (default ``~/.cache/clinrag``), outside any clone so a fresh
checkout on the same machine reuses it — and every later load is a memory map of that folder.

The converted weights are float32 (the de-quantised values exactly); choosing a compute dtype is the loader's job.
A qwen2 GGUF whose tokenizer gives the same ids as the exact offline Qwen2.5 tokenizer
(:mod:`clinrag.core.models.qwen_tokenizer`) is saved with that tokenizer, which carries Qwen's own chat template.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinrag.core.errors import ModelLoadError
from clinrag.core.io import atomic_dir_write, cache_dir

#: Written last into a converted folder: a folder without it is an interrupted conversion, never used.
DONE_MARKER = "clinrag-conversion.json"

#: Text whose token ids must agree before the offline Qwen2.5 tokenizer replaces a GGUF's own (Chinese included).
PROBE_TEXT = ("A 58-year-old man with crushing chest pain, ST elevation in II, III and aVF; troponin I 2.3 ng/mL. "
              "What is the diagnosis? 患者男性，58岁，胸痛。诊断是什么？ <|im_start|>user\nDose: 0.5 mg/kg IV q8h<|im_end|>")


@dataclass(frozen=True)
class GGUFInfo:
    """What the header says: architecture, display name, layers, hidden size and tokenizer size."""

    architecture: str
    name: str
    block_count: int | None
    hidden_size: int | None
    n_tokens: int | None


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None or not field.data:
        return None
    from gguf import GGUFValueType

    value = field.parts[field.data[0]]
    if field.types and field.types[0] == GGUFValueType.STRING:
        return bytes(value).decode("utf-8", errors="replace")
    return int(value[0]) if len(value) else None


def read_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """The GGUF header (seconds, no tensor is de-quantised); a file that is not GGUF is a one-line error."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupted file fails in many ways inside gguf
        raise ModelLoadError(f"{path}: corrupted or truncated GGUF file ({type(exc).__name__}: {exc})") from None
    arch = _field(reader, "general.architecture") or "unknown"
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    return GGUFInfo(architecture=str(arch), name=str(_field(reader, "general.name") or path.stem),
                    block_count=_field(reader, f"{arch}.block_count"),
                    hidden_size=_field(reader, f"{arch}.embedding_length"),
                    n_tokens=len(tokens.data) if tokens is not None else None)


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]


def check_supported(path: Path, info: GGUFInfo) -> None:
    valid = supported_architectures()
    if info.architecture not in valid:
        raise ModelLoadError(f"{path}: GGUF architecture {info.architecture!r} cannot be loaded by transformers "
                             f"(loadable: {', '.join(valid)})")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a second load does not re-read 500 MB."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = cache_dir() / "hashes.json"
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo.get(key), str):
        return memo[key]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    memo[key] = digest
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_name(f".hashes.{os.getpid()}.json")
        tmp.write_text(json.dumps(memo, indent=1), encoding="utf-8")
        os.replace(tmp, memo_file)
    except OSError:
        pass  # the memo only saves time; a read-only cache still works
    return digest


def converted_dir(sha256: str) -> Path:
    return cache_dir() / "converted" / sha256


def is_converted(folder: Path) -> bool:
    return (folder / DONE_MARKER).is_file() and (folder / "config.json").is_file()


def _tokenizer_for(path: Path, info: GGUFInfo) -> Any:
    """The GGUF's own tokenizer, or the exact offline Qwen2.5 one when a qwen2 GGUF's ids agree with it."""
    from transformers import AutoTokenizer

    own = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if info.architecture == "qwen2":
        from .qwen_tokenizer import load_qwen25_tokenizer

        qwen = load_qwen25_tokenizer("instruct")
        if (own.encode(PROBE_TEXT, add_special_tokens=False) == qwen.encode(PROBE_TEXT, add_special_tokens=False)
                and own.eos_token == qwen.eos_token):
            return qwen
    return own


def convert(path: str | os.PathLike[str], out: str | os.PathLike[str], *, info: GGUFInfo | None = None,
            log: Any = None) -> Path:
    """De-quantise ``path`` into a transformers folder ``out`` (float32 safetensors + tokenizer), atomically."""
    import time

    import torch
    from transformers import AutoModelForCausalLM

    path, out = Path(path), Path(out)
    info = info or read_info(path)
    check_supported(path, info)
    start = time.perf_counter()
    if log:
        log(f"converting {path.name} ({info.architecture}, {path.stat().st_size / 2**20:.0f} MiB) to safetensors "
            f"once; later loads reuse {out}")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        tokenizer = _tokenizer_for(path, info)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot convert {path}: {first}") from exc
    # De-quantised on load, the model is dense, but transformers still marks it quantized (blocks saving and PEFT).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record = {"source": str(path), "bytes": path.stat().st_size, "architecture": info.architecture,
                  "name": info.name, "seconds": round(time.perf_counter() - start, 1)}
        (tmp / DONE_MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    atomic_dir_write(out, write, kind="gguf-conversion", legacy=(DONE_MARKER,))
    return out


def ensure_converted(path: str | os.PathLike[str], *, log: Any = None) -> Path:
    """The cached transformers folder for a ``.gguf`` file, converting it the first time."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    folder = converted_dir(file_sha256(path))
    if is_converted(folder):
        return folder
    info = read_info(path)
    check_supported(path, info)
    try:
        return convert(path, folder, info=info, log=log if log is not None else _stderr)
    except FileExistsError:  # another process finished the same conversion first
        if is_converted(folder):
            return folder
        raise


def gguf_to_folder(gguf: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Convert ``gguf`` into the folder ``out`` (not the shared cache): for tests, benchmarks and exports."""
    return convert(gguf, out)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
