"""File input and output shared by every command. Input text is UTF-8 (a UTF-8/16/32 byte-order mark is honoured);
anything else is one error naming the file and line. Output folders are written whole or not at all, and never over
what the user owns.

A command writes a folder only when it is absent, empty, or one the same kind of command wrote before — recognised
by the marker file :data:`OUTPUT_MARKER` that every written folder carries (or, for folders written before markers
existed, by that kind's own manifest file). Anything else is one :class:`OutputError` line; nothing is deleted or
renamed. Temp folders a killed run left beside the output (``.NAME.tmp-PID-…``, ``.NAME.old-PID``) are removed by
the next run of the same command, once their process is gone.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import ClinragError

OUTPUT_MARKER = ".clinrag-output.json"


class OutputError(ClinragError):
    """An output path cannot be written: it holds the user's files, is a file, is unwritable, …"""


# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class InputError(ClinragError, ValueError):
    """An input file cannot be read as text (encoding, permissions, a folder where a file was expected)."""


def decode_text(data: bytes, source: str | Path) -> str:
    """``data`` as text: UTF-8, or the encoding its byte-order mark names (the mark is dropped). Anything else —
    Latin-1, UTF-16 without a mark — is one :class:`InputError` naming the file and line."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        unit = {"utf-16": b"\n\x00", "utf-32": b"\n\x00\x00\x00"}.get(encoding, b"\n")
        line = data[:exc.start].count(unit) + 1
        label = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        raise InputError(f"{source}: line {line}: not valid {label} text (byte {data[exc.start]:#04x}); save the "
                         f"file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)") from None


def read_text(path: str | Path) -> str:
    """A whole input file as text (see :func:`decode_text`); unreadable files are one line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; expected a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({_os_reason(exc)})") from None
    return decode_text(data, path)


def text_lines(path: str | Path) -> list[str]:
    """The lines of an input file (split on newlines only: JSON strings may hold U+2028 and friends)."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def cache_dir() -> Path:
    """clinrag's per-machine cache (converted models, the offline tokenizer, downloads), outside any clone:
    ``$CLINRAG_CACHE``, else ``$XDG_CACHE_HOME/clinrag``, else ``~/.cache/clinrag``."""
    root = os.environ.get("CLINRAG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clinrag")
    return Path(root)


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a folder clinrag wrote, or None (absent or unreadable: then the folder is not ours)."""
    try:
        data = json.loads((Path(folder) / OUTPUT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(folder: Path, kind: str, files: Iterable[str] = ()) -> None:
    from . import __version__

    record = {"kind": kind, "clinrag_version": __version__, "pid": os.getpid(), "files": sorted(files)}
    (folder / OUTPUT_MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _resolved(out: Path, option: str) -> Path:
    """``out`` made absolute; the current folder (or one above it) is refused: it cannot be replaced whole."""
    resolved = Path(os.path.abspath(out))
    cwd = Path.cwd()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputError(f"{option} {out}: is the current folder (or holds it); name a new sub-folder instead")
    return resolved


def check_output_dir(out: Path, kind: str, *, legacy: Iterable[str] = (), option: str = "--out") -> bool:
    """Whether ``out`` already holds this kind's output (True), or is absent/empty (False); anything else — a file,
    a folder of the user's, another command's output, an unwritable parent — raises one :class:`OutputError` line.

    ``legacy`` names files that mark this kind's folders written before :data:`OUTPUT_MARKER` existed.
    """
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise OutputError(f"{option} {out}: is a broken symbolic link")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out}: is a file, not a folder; name a folder")
    if out.is_dir():
        try:
            entries = list(out.iterdir())
        except OSError as exc:
            raise OutputError(f"{option} {out}: cannot be read ({_os_reason(exc)})") from None
        if entries:
            marker = read_marker(out)
            legacy = list(legacy)
            if marker is None and not (legacy and all((out / name).exists() for name in legacy)):
                sample = ", ".join(sorted(e.name for e in entries)[:3])
                raise OutputError(f"{option} {out}: folder is not empty and was not written by clinrag ({sample}"
                                  f"{', …' if len(entries) > 3 else ''}); name a new or empty folder")
            if marker is not None and marker.get("kind") != kind:
                raise OutputError(f"{option} {out}: holds the output of another command ({marker.get('kind')!r}, "
                                  f"not {kind!r}); name another folder")
            return True
    parent = out.parent if out.parent != Path("") else Path(".")
    existing = next((p for p in [parent, *parent.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise OutputError(f"{option} {out}: {existing} is a file, not a folder")
    target = out if out.is_dir() else existing
    if target is not None and not os.access(target, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {out}: {target} is not writable")
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_temps(out: Path, kind: str) -> list[Path]:
    """Remove ``.NAME.tmp-PID-*`` / ``.NAME.old-PID`` folders beside ``out`` that a killed run of this kind left
    (their marker says so and their process is gone). Returns what was removed."""
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*"):
        for path in out.parent.glob(pattern):
            marker = read_marker(path) if path.is_dir() and not path.is_symlink() else None
            if marker is None or marker.get("kind") != kind:
                continue  # not provably ours: never deleted
            pid = marker.get("pid")
            if pid == os.getpid() or (isinstance(pid, int) and _pid_alive(pid)):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _foreign_files(out: Path) -> list[str]:
    """Entries of a folder we wrote that our marker does not list: files the user added since (never deleted)."""
    marker = read_marker(out)
    if marker is None or not marker.get("files"):
        return []  # a legacy folder: its manifest is the mark, and it holds what its kind writes
    known = set(marker["files"]) | {OUTPUT_MARKER}
    return sorted(e.name for e in out.iterdir() if e.name not in known)


def check_dir_write(out: Path, kind: str, *, legacy: Iterable[str] = (), option: str = "--out") -> Path:
    """What :func:`atomic_dir_write` checks before writing, callable before the long work that produces the output
    (a bad ``--out`` fails in a second, not after the corpus is embedded). Returns the resolved folder."""
    out = _resolved(Path(out), option)
    if check_output_dir(out, kind, legacy=legacy, option=option):
        extra = _foreign_files(out)
        if extra:
            raise OutputError(f"{option} {out}: holds files clinrag did not write ({', '.join(extra[:3])}"
                              f"{', …' if len(extra) > 3 else ''}); move them out or name another folder")
    return out


def atomic_dir_write(out: Path, write: Callable[[Path], None], *, kind: str, legacy: Iterable[str] = (),
                     option: str = "--out") -> Path:
    """Call ``write(tmp_dir)`` then move ``tmp_dir`` to ``out``; ``out`` must be absent, empty or this kind's own
    output (see :func:`check_output_dir`), and is then replaced whole. On any failure ``out`` is untouched and the
    temp folder removed. OS errors (read-only, full disk, …) become one :class:`OutputError` line."""
    out = check_dir_write(out, kind, legacy=legacy, option=option)
    shown = out
    clean_stale_temps(out, kind)
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; an output folder is meant to be shared
        _write_marker(tmp, kind)  # first, so a killed run's temp folder is recognisably ours
        write(tmp)
        _write_marker(tmp, kind, (p.name for p in tmp.iterdir() if p.name != OUTPUT_MARKER))
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        elif out.is_symlink():
            raise OutputError(f"{option} {shown}: is a broken symbolic link")
        else:
            os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{option} {shown}: cannot write ({_os_reason(exc)}"
                          f"{': ' + str(exc.filename) if exc.filename else ''})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def claim_output_dir(out: Path, kind: str, *, legacy: Iterable[str] = (), option: str = "--out") -> bool:
    """Make ``out`` a folder this kind of command writes into file by file (evaluate, finetune): it must be absent,
    empty or this kind's own output; it is created and marked. Returns whether it held this kind's output before."""
    out = Path(out)
    _resolved(out, option)
    existed = check_output_dir(out, kind, legacy=legacy, option=option)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if read_marker(out) is None:
            _write_marker(out, kind)
    except OSError as exc:
        raise OutputError(f"{option} {out}: cannot write ({_os_reason(exc)})") from None
    return existed


def remove_own_output(out: Path, kind: str, *, allowed: Callable[[str], bool], option: str = "--out") -> None:
    """Delete a folder this kind wrote (``--overwrite``), refusing when it holds any entry ``allowed`` rejects."""
    out = Path(out)
    if not out.exists():
        return
    check_output_dir(out, kind, option=option)
    extra = sorted(e.name for e in out.iterdir() if e.name != OUTPUT_MARKER and not allowed(e.name))
    if extra:
        raise OutputError(f"{option} {out}: holds files clinrag did not write ({', '.join(extra[:3])}"
                          f"{', …' if len(extra) > 3 else ''}); not deleted")
    shutil.rmtree(out)


def atomic_file_write(path: Path, data: str | bytes, *, option: str = "--out") -> Path:
    """Write one file whole (temp file + rename): a reader never sees half of it; errors are one line."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; name a file")
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write ({_os_reason(exc)})") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
