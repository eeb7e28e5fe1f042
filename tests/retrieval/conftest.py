"""Small real fixtures for the retrieval tests: 24 demo passages, the real MiniLM embedder, built once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clinrag.core.types import Passage

DEMO_KB = Path(__file__).resolve().parents[2] / "examples" / "demo" / "knowledge_base.jsonl"


@pytest.fixture(scope="session")
def small_passages() -> list[Passage]:
    """24 demo passages; metadata ``source`` alternates between "odd" and "even" (for filter tests)."""
    rows = [json.loads(line) for line in DEMO_KB.read_text(encoding="utf-8").splitlines()[:24]]
    return [Passage(r["id"], r["text"], r["title"], {"source": "even" if i % 2 == 0 else "odd"})
            for i, r in enumerate(rows)]


@pytest.fixture(scope="session")
def small_index(small_passages, embedder):
    from clinrag.retrieval.store import PassageIndex

    return PassageIndex.build(small_passages, embedder)


@pytest.fixture(scope="session")
def small_index_dir(small_index, tmp_path_factory) -> Path:
    return small_index.save(tmp_path_factory.mktemp("small") / "index")
