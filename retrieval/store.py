"""A persistent dense index: passages + their FAISS index + a JSON manifest, in one folder.

Folder layout (written to a temp folder, then renamed into place, so a crash never leaves half an index)::

    manifest.json     format version, embedder name, dimension, metric, passage count, checksum
    passages.jsonl    one passage per line, in FAISS row order
    dense.faiss       the FAISS index (FAISS's own binary format, no pickle)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinrag import __version__
from clinrag.errors import IndexLoadError
from clinrag.types import Hit, Passage

FORMAT = "clinrag-index"
FORMAT_VERSION = 1
MANIFEST, PASSAGES, DENSE = "manifest.json", "passages.jsonl", "dense.faiss"


def passages_checksum(passages: Sequence[Passage]) -> str:
    h = hashlib.sha256()
    for p in passages:
        h.update(p.id.encode())
        h.update(b"\x00")
        h.update(p.text.encode())
        h.update(b"\x01")
    return h.hexdigest()


def atomic_dir_write(out: Path, write: Any) -> None:
    """Call ``write(tmp_dir)`` then move ``tmp_dir`` to ``out`` (replacing it); clean up on failure."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
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


@dataclass
class DenseIndex:
    """Passages and their normalised embeddings in a FAISS inner-product index."""

    passages: list[Passage]
    faiss_index: Any
    embedder_name: str
    dimension: int
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, passages: Sequence[Passage], embedder: Any, *, show_progress: bool = False) -> DenseIndex:
        import faiss

        vecs = embedder.encode_passages([p.text for p in passages], show_progress=show_progress)
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        return cls(list(passages), index, embedder.name, int(vecs.shape[1]))

    def __len__(self) -> int:
        return len(self.passages)

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query vector, in one FAISS call."""
        k = min(k, len(self.passages))
        if k <= 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        scores, ids = self.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return [[Hit(self.passages[i], float(s), rank) for rank, (s, i) in enumerate(zip(srow, irow)) if i >= 0]
                for srow, irow in zip(scores, ids)]

    # -- persistence -----------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        import faiss

        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "clinrag_version": __version__,
            "embedder": self.embedder_name, "dimension": self.dimension, "normalized": True,
            "metric": "inner_product", "index_type": "flat", "passages": len(self.passages),
            "checksum": passages_checksum(self.passages),
        }

        def write(tmp: Path) -> None:
            with (tmp / PASSAGES).open("w", encoding="utf-8") as fh:
                for p in self.passages:
                    fh.write(json.dumps({"id": p.id, "title": p.title, "text": p.text, **p.metadata},
                                        ensure_ascii=False) + "\n")
            faiss.write_index(self.faiss_index, str(tmp / DENSE))
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

        atomic_dir_write(Path(out), write)
        self.manifest = manifest
        return Path(out)

    @classmethod
    def load(cls, folder: str | Path, *, expect_embedder: str | None = None) -> DenseIndex:
        import faiss

        folder = Path(folder)
        mpath = folder / MANIFEST
        if not folder.is_dir():
            raise IndexLoadError(f"{folder}: index folder not found (build one with `clinrag index build`)")
        if not mpath.exists():
            raise IndexLoadError(f"{folder}: not a clinrag index (no {MANIFEST})")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise IndexLoadError(f"{mpath}: corrupted manifest: {exc.msg}") from None
        if manifest.get("format") != FORMAT:
            raise IndexLoadError(f"{folder}: not a clinrag index (format {manifest.get('format')!r})")
        if expect_embedder and manifest["embedder"] != expect_embedder:
            raise IndexLoadError(f"{folder}: built with embedder {manifest['embedder']!r}, "
                                 f"but {expect_embedder!r} was requested")
        passages = []
        with (folder / PASSAGES).open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError:
                    raise IndexLoadError(f"{folder / PASSAGES}: line {lineno}: corrupted") from None
                pid, text, title = raw.pop("id"), raw.pop("text"), raw.pop("title", "")
                passages.append(Passage(pid, text, title, raw))
        if len(passages) != manifest["passages"] or passages_checksum(passages) != manifest["checksum"]:
            raise IndexLoadError(f"{folder / PASSAGES}: does not match the manifest (truncated or edited)")
        try:
            index = faiss.read_index(str(folder / DENSE))
        except RuntimeError as exc:
            raise IndexLoadError(f"{folder / DENSE}: cannot be read ({str(exc).splitlines()[0]})") from None
        if index.ntotal != len(passages) or index.d != manifest["dimension"]:
            raise IndexLoadError(f"{folder / DENSE}: has {index.ntotal} vectors of dim {index.d}, manifest says "
                                 f"{len(passages)} of dim {manifest['dimension']}")
        return cls(passages, index, manifest["embedder"], manifest["dimension"], manifest)
