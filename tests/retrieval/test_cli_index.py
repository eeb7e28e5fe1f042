"""`clinrag index build|add|info|search|evaluate` end to end on a tiny corpus, and the search JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clinrag.cli import main

DEMO_KB = Path(__file__).resolve().parents[2] / "examples" / "demo" / "knowledge_base.jsonl"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rows = [json.loads(line) for line in DEMO_KB.read_text(encoding="utf-8").splitlines()[:10]]
    d = tmp_path_factory.mktemp("cli")
    (d / "base.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:8]) + "\n", encoding="utf-8")
    (d / "more.jsonl").write_text("\n".join(json.dumps(r) for r in rows[8:]) + "\n", encoding="utf-8")
    cases = {"id": "c1", "clinical_scenario": "A patient.", "questions": [rows[0]["title"], rows[9]["title"]],
             "evidence": [[rows[0]["id"]], [rows[9]["id"]]]}
    (d / "cases.jsonl").write_text(json.dumps(cases) + "\n", encoding="utf-8")
    return d


def test_build_add_info_search_evaluate(corpus, capsys):
    out = corpus / "index"
    assert main(["index", "build", str(corpus / "base.jsonl"), "--out", str(out), "--index", "auto",
                 "--chunk-tokens", "96", "--overlap", "16"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["index_type"] == "flat" and manifest["chunking"] == {"tokens": 96, "overlap": 16}
    n_base = manifest["passages"]
    assert n_base > 8  # long demo passages were split into windows
    assert main(["index", "add", str(out), str(corpus / "more.jsonl")]) == 0
    capsys.readouterr()
    assert main(["index", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["passages"] > n_base and info["embedder"] == "all-MiniLM-L6-v2"

    assert main(["index", "search", str(out), "blood pressure treatment", "-k", "3", "--mode", "hybrid",
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert isinstance(hits, list) and len(hits) == 3
    for h in hits:
        assert set(h) == {"id", "title", "score", "text"}
        assert isinstance(h["id"], str) and isinstance(h["title"], str) and isinstance(h["text"], str)
        assert isinstance(h["score"], float)
    assert main(["index", "search", str(out), "blood pressure", "--mode", "bm25", "--filter", "source=nowhere",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["index", "evaluate", str(out), str(corpus / "cases.jsonl"), "--mode", "bm25",
                 "--out", str(corpus / "eval.json")]) == 0
    table = capsys.readouterr().out
    assert "| cases.jsonl | 2 | bm25 |" in table
    result = json.loads((corpus / "eval.json").read_text())["results"][0]
    assert result["questions"] == 2 and set(result["modes"]) == {"bm25"}


def test_errors_are_one_line(corpus, capsys):
    assert main(["index", "info", str(corpus / "missing")]) == 2
    assert "index folder not found" in capsys.readouterr().err
    assert main(["index", "search", str(corpus), "x", "--filter", "novalue"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
