"""Fixtures of the serving tests: a shared MedQuAD case as plain JSON and a small index that holds its evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Distractors beside the case's gold passages: enough that retrieval has to choose, few enough to embed quickly.
DISTRACTORS = 40


@pytest.fixture(scope="session")
def medquad_case(shared_data) -> dict:
    """The first case of the shared MedQuAD multi-question set, exactly as the file holds it (6 questions)."""
    with (shared_data / "cases" / "medquad_multi_dev.jsonl").open(encoding="utf-8") as fh:
        return json.loads(fh.readline())


@pytest.fixture(scope="session")
def medquad_index(tmp_path_factory, shared_data, medquad_case, embedder) -> Path:
    """The case's gold evidence plus :data:`DISTRACTORS` seeded others from the shared corpus, embedded once."""
    from clinrag.core.cases import parse_case
    from clinrag.evaluation.subset import build_subset_index

    out = tmp_path_factory.mktemp("medquad") / "index"
    return build_subset_index([parse_case(medquad_case)], shared_data / "corpus" / "medical_passages.jsonl", out,
                              extra=DISTRACTORS, embedder=embedder, show_progress=False)
