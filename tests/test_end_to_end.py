"""A real end-to-end answer: the demo index built with the real embedder, the extractive generator, the CLI."""

from __future__ import annotations

import json

import pytest
from clinrag.cli import main

from .conftest import DEMO_CASES


@pytest.mark.slow
def test_cli_answers_demo_case_json(demo_index_dir, capsys):
    rc = main(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--case-id", "demo-inferior-stemi",
               "--format", "json"])
    assert rc == 0
    resp = json.loads(capsys.readouterr().out.strip())
    assert resp["case_id"] == "demo-inferior-stemi" and len(resp["answers"]) == 4  # questions given as one string
    reperfusion = resp["answers"][2]
    assert "reperfusion" in reperfusion["question"]
    assert "kb-mi-pci" in [s["id"] for s in reperfusion["sources"]]
    assert "PCI" in reperfusion["answer"]
    assert all(a["sources"] and a["answer"] for a in resp["answers"])
    assert resp["summary"].startswith("A 58-year-old man")


@pytest.mark.slow
def test_every_demo_case_gets_one_answer_per_question(demo_index_dir, capsys):
    from clinrag.core.cases import load_cases

    assert main(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--format", "json"]) == 0
    responses = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    cases = load_cases(DEMO_CASES)
    assert [r["case_id"] for r in responses] == [c.id for c in cases]
    assert all(len(r["answers"]) == c.n_questions for r, c in zip(responses, cases))


@pytest.mark.slow
def test_markdown_output(demo_index_dir, capsys):
    assert main(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--case-id", "demo-hypothyroidism"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Case demo-hypothyroidism") and "**Summary.**" in out and "Sources: `kb-" in out


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "questions": ["q?"]}\n')
    assert main(["answer", str(bad), "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, line 1, field 'clinical_scenario'" in err and "Traceback" not in err
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "clinical_scenario": "s", "questions": ["q?"]}\n')
    assert main(["answer", str(good), "--index", str(tmp_path / "missing")]) == 2
    assert "index folder not found" in capsys.readouterr().err
    assert main(["answer", str(good), "--index", str(tmp_path), "--strategy", "nope"]) == 2
    assert "unknown strategy 'nope' (valid: " in capsys.readouterr().err
