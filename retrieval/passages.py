"""Read passages from JSONL (``{id, title, text, ...metadata}``), plain .txt/.md files and folders."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from clinrag.errors import ClinragError
from clinrag.types import Passage

TEXT_SUFFIXES = (".txt", ".md")


class PassageError(ClinragError, ValueError):
    pass


def _jsonl(path: Path) -> Iterator[Passage]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PassageError(f"{path}: line {lineno}: invalid JSON: {exc.msg}") from None
            if not isinstance(raw, dict):
                raise PassageError(f"{path}: line {lineno}: expected a JSON object")
            pid, text = raw.pop("id", None), raw.pop("text", None)
            if pid is None or (isinstance(pid, str) and not pid.strip()):
                raise PassageError(f"{path}: line {lineno}: field 'id': required and non-empty")
            if not isinstance(text, str) or not text.strip():
                raise PassageError(f"{path}: line {lineno}: field 'text': passage {pid!r} has no text")
            title = raw.pop("title", "") or ""
            yield Passage(id=str(pid), text=text, title=str(title), metadata=raw)


def _text_file(path: Path, root: Path | None) -> Passage:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise PassageError(f"{path}: file is empty")
    rel = path.relative_to(root).as_posix() if root else path.name
    title = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.strip()), path.stem)
    return Passage(id=rel, text=text.strip(), title=title, metadata={"source": str(path)})


def iter_passages(sources: Iterable[str | Path]) -> Iterator[Passage]:
    """Passages from every source, in order. Folders are walked (sorted) for .jsonl/.txt/.md files."""
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise PassageError(f"{path}: not found")
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix == ".jsonl":
                    yield from _jsonl(child)
                elif child.suffix in TEXT_SUFFIXES:
                    yield _text_file(child, path)
        elif path.suffix == ".jsonl":
            yield from _jsonl(path)
        elif path.suffix in TEXT_SUFFIXES:
            yield _text_file(path, None)
        else:
            raise PassageError(f"{path}: unsupported passage file (valid: .jsonl, .txt, .md, or a folder)")


def load_passages(sources: Iterable[str | Path]) -> list[Passage]:
    """All passages; duplicate ids are an error naming both sources, never silently merged."""
    passages = list(iter_passages(sources))
    seen: set[str] = set()
    for p in passages:
        if p.id in seen:
            raise PassageError(f"duplicate passage id {p.id!r}")
        seen.add(p.id)
    if not passages:
        raise PassageError("no passages found in " + ", ".join(map(str, sources)))
    return passages
