"""Fixtures for strategy tests: a small real MedQuAD index, and one torch thread for SmolLM2 decoding.

The index holds the gold evidence passages of three MedQuAD cases in ../shared/data plus ~200 other corpus
passages (every 140th line: many conditions, so retrieval has to discriminate).
"""

from __future__ import annotations

import json

import pytest
from clinrag.core.cases import load_cases
from clinrag.core.types import Passage
from clinrag.retrieval.retriever import IndexRetriever

CASE_IDS = ["medquad-2-0000530", "medquad-3-0000874", "medquad-6-0000054"]


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def medquad(shared_data, embedder, tmp_path_factory):
    from clinrag.retrieval.store import PassageIndex

    cases = {c.id: c for c in load_cases(shared_data / "cases" / "medquad_multi_dev.jsonl") if c.id in CASE_IDS}
    gold = {pid for c in cases.values() for ev in c.evidence for pid in ev}
    passages = []
    with (shared_data / "corpus" / "medical_passages.jsonl").open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh):
            if lineno % 140 == 0 or any(f'"{g}"' in line[:60] for g in gold):
                raw = json.loads(line)
                passages.append(Passage(raw["id"], raw["text"], raw.get("title", "")))
    assert gold <= {p.id for p in passages}
    out = tmp_path_factory.mktemp("medquad") / "index"
    PassageIndex.build(passages, embedder).save(out)
    return cases, IndexRetriever(out, embedder=embedder)
