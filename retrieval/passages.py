"""Read passages from JSONL (``{id, title, text, ...metadata}``), plain .txt/.md files and folders, and HF datasets.

Problems are reported, never papered over: a duplicate id names both places it came from, an empty text names
its file and line, and nothing is merged silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from clinrag.core.badrows import BadRows, handle_bad_row
from clinrag.core.errors import ClinragError
from clinrag.core.io import read_text, text_lines
from clinrag.core.types import Passage

TEXT_SUFFIXES = (".txt", ".md")
HF_PREFIX = "hf:"


class PassageError(ClinragError, ValueError):
    pass


def _record(raw: Any, where: str) -> Passage:
    """One ``{id, title, text, ...}`` mapping -> Passage; ``where`` names the file/line or dataset row."""
    if not isinstance(raw, Mapping):
        raise PassageError(f"{where}: expected a JSON object")
    raw = dict(raw)
    pid, text = raw.pop("id", None), raw.pop("text", None)
    if pid is None or (isinstance(pid, str) and not pid.strip()):
        raise PassageError(f"{where}: field 'id': required and non-empty")
    if isinstance(pid, bool) or not isinstance(pid, (str, int)):
        # str() of a list or object would make an id no citation or gold evidence can ever match
        raise PassageError(f"{where}: field 'id': must be a string or an integer, got {type(pid).__name__}")
    if not isinstance(text, str) or not text.strip():
        raise PassageError(f"{where}: field 'text': passage {pid!r} has no text")
    title = raw.pop("title", "") or ""
    return Passage(id=str(pid), text=text, title=str(title), metadata=raw)


def _jsonl(path: Path, bad_rows: BadRows | None = None) -> Iterator[tuple[Passage, str]]:
    for lineno, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {lineno}"
        try:
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PassageError(f"{where}: invalid JSON: {exc.msg}") from None
            except RecursionError:
                raise PassageError(f"{where}: JSON nested too deeply") from None
            passage = _record(raw, where)
        except PassageError as exc:
            handle_bad_row(bad_rows, exc)
            continue
        yield passage, where


def _text_file(path: Path, root: Path | None) -> tuple[Passage, str]:
    text = read_text(path)
    if not text.strip():
        raise PassageError(f"{path}: file is empty")
    rel = path.relative_to(root).as_posix() if root else path.name
    title = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.strip()), path.stem)
    return Passage(id=rel, text=text.strip(), title=title, metadata={"source": str(path)}), str(path)


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def iter_dataset(dataset: Any, name: str = "dataset", bad_rows: BadRows | None = None) -> Iterator[tuple[Passage, str]]:
    """Rows of a Hugging Face ``Dataset`` with ``id`` and ``text`` columns (``title`` and others optional)."""
    for i, row in enumerate(dataset):
        where = f"{name}: row {i}"
        try:
            passage = _record(row, where)
        except PassageError as exc:
            handle_bad_row(bad_rows, exc)
            continue
        yield passage, where


def _load_hf(spec: str) -> tuple[Any, str]:
    """``hf:NAME[:SPLIT]`` (hub id or local dataset script/folder; offline, only cached datasets load)."""
    import datasets

    name, _, split = spec[len(HF_PREFIX):].partition(":")
    try:
        return datasets.load_dataset(name, split=split or "train"), spec
    except Exception as exc:  # datasets raises many types; the user needs the reason, one line
        raise PassageError(f"{spec}: cannot load dataset: {str(exc).splitlines()[0]}") from None


def _load_saved(path: Path) -> Any:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise PassageError(f"{path}: dataset has splits {sorted(ds)}; pass one split's folder")
        ds = ds["train"]
    return ds


def iter_passages(sources: Iterable[str | Path | Any], bad_rows: BadRows | None = None) -> Iterator[tuple[Passage, str]]:
    """(passage, where it came from) for every source, in order.

    A source is a .jsonl/.txt/.md file, a folder (walked sorted for those files, or a ``save_to_disk`` dataset),
    ``hf:NAME[:SPLIT]``, or a ``datasets.Dataset`` object.
    """
    for src in sources:
        if hasattr(src, "column_names") and not isinstance(src, (str, Path)):
            yield from iter_dataset(src, getattr(src, "info", None) and src.info.dataset_name or "dataset", bad_rows)
            continue
        if isinstance(src, str) and src.startswith(HF_PREFIX):
            ds, name = _load_hf(src)
            yield from iter_dataset(ds, name, bad_rows)
            continue
        path = Path(src)
        if not path.exists():
            raise PassageError(f"{path}: not found")
        if _is_saved_dataset(path):
            yield from iter_dataset(_load_saved(path), str(path), bad_rows)
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix == ".jsonl":
                    yield from _jsonl(child, bad_rows)
                elif child.suffix in TEXT_SUFFIXES:
                    yield _text_file(child, path)
        elif path.suffix == ".jsonl":
            yield from _jsonl(path, bad_rows)
        elif path.suffix in TEXT_SUFFIXES:
            yield _text_file(path, None)
        else:
            raise PassageError(f"{path}: unsupported passage file (valid: .jsonl, .txt, .md, a folder, "
                               f"a saved HF dataset folder, or hf:NAME[:SPLIT])")


def check_unique(items: Iterable[tuple[Passage, str]], known: Mapping[str, str] | None = None,
                 bad_rows: BadRows | None = None) -> list[Passage]:
    """The passages, or an error naming both places a duplicate id came from (never merged silently; with
    ``--on-bad-rows skip`` the later one is skipped and reported)."""
    seen: dict[str, str] = dict(known or {})
    out = []
    for p, where in items:
        if p.id in seen:
            handle_bad_row(bad_rows, PassageError(f"duplicate passage id {p.id!r}: {where} and {seen[p.id]}"))
            continue
        seen[p.id] = where
        out.append(p)
    return out


def load_passages(sources: Iterable[str | Path | Any], bad_rows: BadRows | None = None) -> list[Passage]:
    """All passages from ``sources`` (see :func:`iter_passages`); duplicate ids and empty texts are errors (or,
    with ``bad_rows`` in skip mode, skipped and reported)."""
    sources = list(sources)
    passages = check_unique(iter_passages(sources, bad_rows), bad_rows=bad_rows)
    if not passages:
        raise PassageError("no passages found in " + ", ".join(map(str, sources)))
    return passages
