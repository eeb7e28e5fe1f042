"""A persistent passage index: passages + FAISS vectors + BM25 state + a JSON manifest, in one folder.

Folder layout (written to a temp folder, then renamed into place, so a crash never leaves half an index)::

    manifest.json     format, clinrag version, embedder (name, dimension, precision, prefixes, normalised),
                      index type and parameters, BM25 parameters, chunking, passage count, content checksum,
                      and the size + sha256 of every other file (truncation and corruption are caught on load)
    passages.jsonl    one passage per line, in FAISS row order
    dense.faiss       the FAISS index (FAISS's own binary format)
    bm25/             bm25s state: JSON vocabulary and parameters, numpy arrays loaded with allow_pickle=False

Nothing in the folder is a pickle: an index folder can be handed to someone safely.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from clinrag.core import __version__
from clinrag.core.defaults import (
    DEFAULT_EMBEDDER_ALIASES,
    HYBRID_DEPTH,
    HYBRID_FUSION,
    RRF_K,
    SIBLING_CONTRAST,
)
from clinrag.core.errors import ClinragError, IndexLoadError
from clinrag.core.io import OUTPUT_MARKER, atomic_dir_write
from clinrag.core.types import Hit, Passage

from .ann import AnnSpec, IndexType, apply_search_params, build_faiss, search_parameters
from .bm25 import BM25Index
from .chunking import ChunkSpec, chunk_passages
from .contrast import rerank, stored_vectors
from .fusion import fuse
from .identity import check_identity, warn_if_legacy
from .options import RetrievalMode
from .passages import PassageError, check_unique

FORMAT = "clinrag-index"
FORMAT_VERSION = 2
MANIFEST, PASSAGES, DENSE, BM25_DIR = "manifest.json", "passages.jsonl", "dense.faiss", "bm25"
OUTPUT_KIND = "index"  # the kind in an index folder's .clinrag-output.json
EMBED_FIELDS = "title+text"
REQUIRED_KEYS = ("embedder", "dimension", "embedder_config", "index_params", "passages", "checksum")




def passage_input(p: Passage) -> str:
    """The text that is embedded and BM25-indexed: the title carries the topic a window of a long page lacks."""
    return f"{p.title}\n{p.text}" if p.title else p.text


def passages_checksum(passages: Sequence[Passage]) -> str:
    h = hashlib.sha256()
    for p in passages:
        for part in (p.id, p.title, p.text):
            h.update(part.encode())
            h.update(b"\x00")
        h.update(b"\x01")
    return h.hexdigest()


def _file_digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def same_embedder(a: str, b: str) -> bool:
    return a == b or (a in DEFAULT_EMBEDDER_ALIASES and b in DEFAULT_EMBEDDER_ALIASES)


def _embedder_config(embedder: Any, dimension: int) -> dict[str, Any]:
    info = embedder.describe() if hasattr(embedder, "describe") else {"embedder": embedder.name}
    return {"name": info.pop("embedder", embedder.name), "dimension": int(dimension), "normalized": True, **info}


def _matches(value: Any, accepted: set[Any]) -> bool:
    try:
        return value in accepted
    except TypeError:  # unhashable metadata (a list): match if any element is accepted
        return isinstance(value, (list, tuple)) and any(_matches(v, accepted) for v in value)


def _filter_mask(passages: Sequence[Passage], filters: Mapping[str, Any] | None) -> np.ndarray | None:
    """Rows whose metadata matches every filter (a value, or a list/tuple/set of accepted values)."""
    if not filters:
        return None
    mask = np.ones(len(passages), dtype=bool)
    for key, wanted in filters.items():
        accepted = set(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else {wanted}
        if key == "title":
            values = [p.title for p in passages]
        else:
            values = [p.metadata.get(key) for p in passages]
        mask &= np.fromiter((_matches(v, accepted) for v in values), dtype=bool, count=len(passages))
    return mask


@dataclass
class PassageIndex:
    """Passages with their normalised embeddings in FAISS and (optionally) a BM25 index over the same rows."""

    passages: list[Passage]
    faiss_index: Any
    embedder_config: dict[str, Any]
    ann: AnnSpec = field(default_factory=AnnSpec)
    bm25: BM25Index | None = None
    chunking: ChunkSpec = field(default_factory=ChunkSpec)
    manifest: dict[str, Any] = field(default_factory=dict)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)  # passage id -> FAISS row, built when needed

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def build(cls, passages: Sequence[Passage], embedder: Any, *, index: str | AnnSpec = "flat",
              bm25: bool = True, chunking: ChunkSpec | None = None, show_progress: bool = False) -> PassageIndex:
        """Chunk (when asked), embed, index. Duplicate ids (also after chunking) are an error."""
        chunking = chunking or ChunkSpec()
        passages = list(passages)
        if chunking.enabled:
            passages = chunk_passages(passages, embedder.tokenizer, chunking)
        passages = check_unique((p, f"passage {i}") for i, p in enumerate(passages))
        if not passages:
            raise PassageError("no passages to index")
        vecs = embedder.encode_passages([passage_input(p) for p in passages], show_progress=show_progress)
        return cls.from_vectors(passages, vecs, _embedder_config(embedder, vecs.shape[1]), index=index, bm25=bm25,
                                chunking=chunking, show_progress=show_progress)

    @classmethod
    def from_vectors(cls, passages: Sequence[Passage], vectors: np.ndarray, embedder_config: dict[str, Any], *,
                     index: str | AnnSpec = "flat", bm25: bool = True, chunking: ChunkSpec | None = None,
                     show_progress: bool = False) -> PassageIndex:
        """An index over already-computed vectors (row i = passage i), e.g. from another index's stored rows."""
        passages = list(passages)
        if len(passages) != len(vectors):
            raise ClinragError(f"{len(passages)} passages but {len(vectors)} vectors")
        spec = (index if isinstance(index, AnnSpec) else AnnSpec.of(index)).resolve(len(passages), vectors.shape[1])
        faiss_index = build_faiss(vectors, spec)
        bm = BM25Index.build([passage_input(p) for p in passages], show_progress=show_progress) if bm25 else None
        return cls(passages, faiss_index, dict(embedder_config), spec, bm, chunking or ChunkSpec())

    def add(self, passages: Sequence[Passage], embedder: Any, *, show_progress: bool = False) -> int:
        """Embed and append new passages; the old vectors are kept as they are. Returns how many were added.

        Chunked like the original build; an id already in the index is an error. BM25 (corpus-wide IDF) is
        rebuilt over all passages, which costs seconds, not an embedding pass.
        """
        self.check_embedder(embedder)
        new = list(passages)
        if self.chunking.enabled:
            new = chunk_passages(new, embedder.tokenizer, self.chunking)
        known = {p.id: "the index" for p in self.passages}
        new = check_unique(((p, f"new passage {i}") for i, p in enumerate(new)), known)
        if not new:
            return 0
        vecs = embedder.encode_passages([passage_input(p) for p in new], show_progress=show_progress)
        self.faiss_index.add(np.ascontiguousarray(vecs, dtype=np.float32))
        self.passages.extend(new)
        if self.bm25 is not None:
            self.bm25 = BM25Index.build([passage_input(p) for p in self.passages], show_progress=show_progress)
        return len(new)

    # -- properties ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.passages)

    @property
    def embedder_name(self) -> str:
        return str(self.embedder_config["name"])

    @property
    def dimension(self) -> int:
        return int(self.embedder_config["dimension"])

    def check_embedder(self, embedder: Any) -> None:
        """An embedder other than the one the vectors came from would make scores meaningless."""
        if not same_embedder(embedder.name, self.embedder_name):
            raise IndexLoadError(f"index was built with embedder {self.embedder_name!r}, "
                                 f"but {embedder.name!r} was given")
        dim = getattr(embedder, "dimension", self.dimension)
        if int(dim) != self.dimension:
            raise IndexLoadError(f"index vectors have dimension {self.dimension}, embedder {embedder.name!r} "
                                 f"gives {dim}")
        if hasattr(embedder, "describe"):  # same name, other weights (a tuned model re-trained in place)
            check_identity(self.embedder_config, embedder.describe())

    def vectors(self) -> np.ndarray:
        """The stored vectors, row i = passage i (flat and HNSW indexes store them exactly)."""
        if self.ann.type not in (IndexType.flat, IndexType.hnsw):
            raise ClinragError(f"stored vectors cannot be read back from a {self.ann.type.value} index")
        return self.faiss_index.reconstruct_n(0, self.faiss_index.ntotal)

    # -- searching ----------------------------------------------------------------------------------
    def search_vectors(self, vectors: np.ndarray, k: int, *, filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Dense top-``k`` hits per query vector, in one FAISS call."""
        return self._dense(vectors, k, _filter_mask(self.passages, filters))

    def search_bm25(self, texts: Sequence[str], k: int, *, filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        return self._bm25(texts, k, _filter_mask(self.passages, filters))

    def resolve_mode(self, mode: str | RetrievalMode) -> RetrievalMode:
        """``auto`` -> ``hybrid`` where this index has BM25 state, else ``dense``; other modes as they are."""
        mode = RetrievalMode.parse(mode)
        if mode is RetrievalMode.auto:
            return RetrievalMode.hybrid if self.bm25 is not None else RetrievalMode.dense
        return mode

    def search(self, *, k: int, mode: str | RetrievalMode = RetrievalMode.dense, vectors: np.ndarray | None = None,
               texts: Sequence[str] | None = None, filters: Mapping[str, Any] | None = None, rrf_k: int = RRF_K,
               weights: Sequence[float] | None = None, depth: int | None = None, fusion: str = HYBRID_FUSION,
               contrast: Sequence[np.ndarray | None] | None = None,
               contrast_weight: float = SIBLING_CONTRAST) -> list[list[Hit]]:
        """Top-``k`` hits per query. ``dense`` needs ``vectors``, ``bm25`` needs ``texts``, ``hybrid`` both.

        ``hybrid`` fuses the dense and BM25 top-``depth`` lists (default ``max(k, 50)``) by ``fusion``: ``zscore``
        (:func:`clinrag.retrieval.fusion.zscore`) or ``rrf`` (1-based ranks, ``rrf_k``); ``weights`` =
        (dense, bm25). ``contrast[i]``, when given, holds query i's sibling vectors: its dense top-``depth`` is
        re-ranked by :mod:`clinrag.retrieval.contrast` with ``contrast_weight`` before fusion (or truncation).
        Hit scores are cosine similarity (contrasted), BM25 score or fused score respectively.
        """
        mode = self.resolve_mode(mode)
        mask = _filter_mask(self.passages, filters)
        if mode is not RetrievalMode.dense and texts is None:
            raise ClinragError(f"{mode.value} search needs query texts")
        if mode is RetrievalMode.bm25:
            return self._bm25(texts, k, mask)  # type: ignore[arg-type]
        if vectors is None:
            raise ClinragError(f"{mode.value} search needs query vectors")
        contrasted = contrast is not None and contrast_weight > 0 and any(c is not None and len(c) for c in contrast)
        if mode is RetrievalMode.dense and not contrasted:
            return self._dense(vectors, k, mask)
        n = max(k, depth or HYBRID_DEPTH)
        dense = self._dense(vectors, n, mask)
        if contrasted:
            dense = [self._contrast(hits, c, contrast_weight) for hits, c in zip(dense, contrast)]  # type: ignore[arg-type]
        if mode is RetrievalMode.dense:
            return [hits[:k] for hits in dense]
        sparse = self._bm25(texts, n, mask)  # type: ignore[arg-type]
        return [fuse([d, s], fusion, k, rrf_k=rrf_k, weights=weights) for d, s in zip(dense, sparse)]

    def _contrast(self, hits: list[Hit], siblings: np.ndarray | None, weight: float) -> list[Hit]:
        if siblings is None or not len(siblings) or not hits:
            return hits
        if len(self._rows) != len(self.passages):
            self._rows = {p.id: i for i, p in enumerate(self.passages)}
        vecs = stored_vectors(self.faiss_index, [self._rows[h.id] for h in hits])
        return rerank(hits, vecs, np.asarray(siblings, dtype=np.float32), weight)

    def _dense(self, vectors: np.ndarray, k: int, mask: np.ndarray | None) -> list[list[Hit]]:
        k = min(k, len(self.passages))
        if k <= 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        params = None
        if mask is not None:
            import faiss

            allowed = np.flatnonzero(mask).astype(np.int64)
            if not len(allowed):
                return [[] for _ in range(len(vectors))]
            params = search_parameters(self.ann, faiss.IDSelectorBatch(allowed))
            k = min(k, len(allowed))
        scores, ids = self.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), k, params=params)
        out = []
        for srow, irow in zip(scores, ids):
            hits = [(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0]
            out.append([Hit(self.passages[i], s, rank) for rank, (i, s) in enumerate(hits)])
        return out

    def _bm25(self, texts: Sequence[str], k: int, mask: np.ndarray | None) -> list[list[Hit]]:
        if self.bm25 is None:
            raise ClinragError("this index has no BM25 state (built with --no-bm25); use mode 'dense' or rebuild")
        return [[Hit(self.passages[i], s, rank) for rank, (i, s) in enumerate(row)]
                for row in self.bm25.search(texts, k, mask)]

    # -- persistence --------------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write the folder atomically (temp folder + rename); the manifest records every file's sha256."""
        import faiss

        out = Path(out)
        manifest: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "clinrag_version": __version__,
            "embedder": self.embedder_name, "dimension": self.dimension, "normalized": True,
            "embedder_config": self.embedder_config, "metric": "inner_product", "embed_fields": EMBED_FIELDS,
            "index_type": self.ann.type.value, "index_params": self.ann.params(),
            "bm25": BM25Index.params() if self.bm25 is not None else None,
            "chunking": self.chunking.as_dict(), "passages": len(self.passages),
            "checksum": passages_checksum(self.passages),
        }

        def write(tmp: Path) -> None:
            with (tmp / PASSAGES).open("w", encoding="utf-8") as fh:
                for p in self.passages:
                    fh.write(json.dumps({"id": p.id, "title": p.title, "text": p.text, **p.metadata},
                                        ensure_ascii=False) + "\n")
            faiss.write_index(self.faiss_index, str(tmp / DENSE))
            if self.bm25 is not None:
                (tmp / BM25_DIR).mkdir()
                self.bm25.save(tmp / BM25_DIR)
            files = sorted(p for p in tmp.rglob("*") if p.is_file() and p.name != OUTPUT_MARKER)
            manifest["files"] = {p.relative_to(tmp).as_posix(): _file_digest(p) for p in files}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

        atomic_dir_write(out, write, kind=OUTPUT_KIND, legacy=(MANIFEST,))
        self.manifest = manifest
        return out

    @classmethod
    def read_manifest(cls, folder: str | Path) -> dict[str, Any]:
        """The manifest of an index folder, checked to be ours and of a format this version reads."""
        folder = Path(folder)
        mpath = folder / MANIFEST
        if not folder.is_dir():
            raise IndexLoadError(f"{folder}: index folder not found (build one with `clinrag index build`)")
        if not mpath.exists():
            raise IndexLoadError(f"{folder}: not a clinrag index (no {MANIFEST})")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise IndexLoadError(f"{mpath}: corrupted manifest: {str(exc)[:100] or type(exc).__name__}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            got = manifest.get("format") if isinstance(manifest, dict) else None
            raise IndexLoadError(f"{folder}: not a clinrag index (format {got!r})")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexLoadError(f"{folder}: index format version {manifest.get('format_version')} cannot be read "
                                 f"by clinrag {__version__} (reads version {FORMAT_VERSION}); rebuild the index")
        missing = [k for k in REQUIRED_KEYS if k not in manifest]
        if missing:
            raise IndexLoadError(f"{mpath}: corrupted manifest: missing {', '.join(missing)}; rebuild the index")
        return manifest

    @classmethod
    def load(cls, folder: str | Path, *, expect_embedder: str | None = None, verify: bool = True) -> PassageIndex:
        """Load and check an index folder. ``verify`` compares every file's size and sha256 to the manifest."""
        import faiss

        folder = Path(folder)
        manifest = cls.read_manifest(folder)
        if expect_embedder and not same_embedder(manifest["embedder"], expect_embedder):
            raise IndexLoadError(f"{folder}: built with embedder {manifest['embedder']!r}, "
                                 f"but {expect_embedder!r} was requested")
        for name, digest in manifest.get("files", {}).items():
            path = folder / name
            if not path.is_file():
                raise IndexLoadError(f"{path}: missing from the index folder")
            if path.stat().st_size != digest["bytes"]:
                raise IndexLoadError(f"{path}: {path.stat().st_size} bytes, manifest says {digest['bytes']} "
                                     f"(truncated or replaced)")
            if verify and _file_digest(path)["sha256"] != digest["sha256"]:
                raise IndexLoadError(f"{path}: checksum differs from the manifest (corrupted or edited)")
        passages = cls._read_passages(folder / PASSAGES)
        if len(passages) != manifest["passages"] or passages_checksum(passages) != manifest["checksum"]:
            raise IndexLoadError(f"{folder / PASSAGES}: does not match the manifest (truncated or edited)")
        try:
            index = faiss.read_index(str(folder / DENSE))
        except RuntimeError as exc:
            raise IndexLoadError(f"{folder / DENSE}: cannot be read ({str(exc).splitlines()[0]})") from None
        if index.ntotal != len(passages) or index.d != manifest["dimension"]:
            raise IndexLoadError(f"{folder / DENSE}: has {index.ntotal} vectors of dim {index.d}, manifest says "
                                 f"{len(passages)} of dim {manifest['dimension']}")
        spec = AnnSpec.from_params(manifest["index_params"])
        apply_search_params(index, spec)
        bm = None
        if manifest.get("bm25"):
            try:
                bm = BM25Index.load(folder / BM25_DIR, len(passages))
            except (OSError, ValueError, KeyError) as exc:
                raise IndexLoadError(f"{folder / BM25_DIR}: cannot be read ({exc})") from None
        chunking = ChunkSpec(**manifest.get("chunking", {}))
        warn_if_legacy(manifest["embedder_config"], str(folder))
        return cls(passages, index, manifest["embedder_config"], spec, bm, chunking, manifest)

    @staticmethod
    def _read_passages(path: Path) -> list[Passage]:
        if not path.is_file():
            raise IndexLoadError(f"{path}: missing from the index folder")
        passages = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    raw = json.loads(line)
                    pid, text, title = raw.pop("id"), raw.pop("text"), raw.pop("title", "")
                except (json.JSONDecodeError, KeyError, AttributeError):
                    raise IndexLoadError(f"{path}: line {lineno}: corrupted") from None
                passages.append(Passage(pid, text, title, raw))
        return passages

