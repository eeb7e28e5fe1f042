"""FAISS index types for normalised vectors (inner product = cosine): exact, HNSW and IVF(-PQ).

``auto`` picks by corpus size: exact ``IndexFlatIP`` below ``AUTO_EXACT_LIMIT`` passages (exact search over a
million 384-d vectors is still tens of milliseconds per batch, and it needs no tuning), IVF-Flat up to
``AUTO_IVF_LIMIT``, IVF-PQ beyond (memory). Every parameter used is recorded in the index manifest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from clinrag.core.errors import ClinragError

from .options import IndexType

AUTO_EXACT_LIMIT = 1_000_000
AUTO_IVF_LIMIT = 10_000_000




@dataclass(frozen=True)
class AnnSpec:
    """An index type and its parameters. ``None`` parameters get size-based defaults in :meth:`resolve`."""

    type: IndexType = IndexType.flat
    M: int = 32                  # HNSW graph degree
    ef_construction: int = 200   # HNSW build-time beam
    ef_search: int = 128         # HNSW query-time beam
    nlist: int | None = None     # IVF cells (default 4·√n)
    nprobe: int = 16             # IVF cells visited per query
    pq_m: int | None = None      # PQ sub-quantisers (default dim/8, must divide dim)
    pq_bits: int = 8

    @classmethod
    def of(cls, type: str | IndexType = "flat", **params: Any) -> AnnSpec:
        return cls(type=IndexType.parse(type), **{k: v for k, v in params.items() if v is not None})

    def resolve(self, n: int, dim: int) -> AnnSpec:
        """Concrete type and parameters for ``n`` vectors of dimension ``dim``."""
        spec = self
        if spec.type is IndexType.auto:
            kind = (IndexType.flat if n < AUTO_EXACT_LIMIT else
                    IndexType.ivf if n < AUTO_IVF_LIMIT else IndexType.ivfpq)
            spec = replace(spec, type=kind)
        if spec.type in (IndexType.ivf, IndexType.ivfpq):
            nlist = spec.nlist or max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39 or 1))
            spec = replace(spec, nlist=nlist)
        if spec.type is IndexType.ivfpq:
            pq_m = spec.pq_m or max(1, dim // 8)
            if dim % pq_m:
                raise ClinragError(f"pq_m={pq_m} must divide the embedding dimension {dim}")
            spec = replace(spec, pq_m=pq_m)
        return spec

    def params(self) -> dict[str, Any]:
        """The parameters that matter for this type (recorded in the manifest)."""
        d = asdict(self)
        d["type"] = self.type.value
        keep = {"flat": (), "hnsw": ("M", "ef_construction", "ef_search"), "ivf": ("nlist", "nprobe"),
                "ivfpq": ("nlist", "nprobe", "pq_m", "pq_bits"), "auto": ()}[self.type.value]
        return {"type": d["type"], **{k: d[k] for k in keep}}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AnnSpec:
        return cls.of(**params)


def build_faiss(vectors: np.ndarray, spec: AnnSpec) -> Any:
    """A trained FAISS index of ``spec.type`` holding ``vectors`` (rows in order; row i = passage i)."""
    import faiss

    n, dim = vectors.shape
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if spec.type is IndexType.flat:
        index = faiss.IndexFlatIP(dim)
    elif spec.type is IndexType.hnsw:
        index = faiss.IndexHNSWFlat(dim, spec.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.ef_construction
        index.hnsw.efSearch = spec.ef_search
    elif spec.type in (IndexType.ivf, IndexType.ivfpq):
        assert spec.nlist is not None
        quantizer = faiss.IndexFlatIP(dim)
        if spec.type is IndexType.ivf:
            index = faiss.IndexIVFFlat(quantizer, dim, spec.nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            assert spec.pq_m is not None
            index = faiss.IndexIVFPQ(quantizer, dim, spec.nlist, spec.pq_m, spec.pq_bits, faiss.METRIC_INNER_PRODUCT)
        if n < spec.nlist:
            raise ClinragError(f"IVF needs at least nlist={spec.nlist} vectors to train, got {n}")
        index.train(vectors)
        index.quantizer_trains_alone = 0
        index.nprobe = spec.nprobe
    else:
        raise ClinragError(f"index type {spec.type.value!r} must be resolved before building")
    if n:
        index.add(vectors)
    return index


def apply_search_params(index: Any, spec: AnnSpec) -> None:
    """Set query-time parameters (efSearch / nprobe) on a loaded index; FAISS files do not keep all of them."""
    import faiss

    if spec.type is IndexType.hnsw:
        faiss.downcast_index(index).hnsw.efSearch = spec.ef_search
    elif spec.type in (IndexType.ivf, IndexType.ivfpq):
        faiss.extract_index_ivf(index).nprobe = spec.nprobe


def search_parameters(spec: AnnSpec, selector: Any) -> Any:
    """FAISS ``SearchParameters`` restricting results to ``selector`` (a metadata filter), or None."""
    import faiss

    if selector is None:
        return None
    if spec.type is IndexType.hnsw:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=spec.ef_search)
    if spec.type in (IndexType.ivf, IndexType.ivfpq):
        return faiss.SearchParametersIVF(sel=selector, nprobe=spec.nprobe)
    return faiss.SearchParameters(sel=selector)
