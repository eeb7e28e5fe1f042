"""CLI start-up: fast and free of torch."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_help_does_not_import_torch():
    code = ("import sys; from clinrag.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'faiss', 'sentence_transformers') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in out.stdout and out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_strategies_and_generators_list(capsys):
    from clinrag.cli import main

    assert main(["strategies", "list"]) == 0
    assert "decomposition" in capsys.readouterr().out
    assert main(["generators", "list"]) == 0
    assert "extractive" in capsys.readouterr().out


def test_graph_mermaid(capsys):
    from clinrag.cli import main

    assert main(["graph"]) == 0
    out = capsys.readouterr().out
    for node in ("translate", "retrieve", "answer", "summarize", "compose"):
        assert node in out


@pytest.mark.parametrize("argv, message", [
    (["index", "search", "idx", "query", "--mode", "nope"],
     "--mode: unknown retrieval mode 'nope' (valid: auto, dense, bm25, hybrid)"),
    (["index", "evaluate", "idx", "cases.jsonl", "--mode", "dense", "--mode", "nope"],
     "--mode: unknown retrieval mode 'nope' (valid: auto, dense, bm25, hybrid)"),
    (["index", "build", "corpus.jsonl", "--out", "x", "--index", "annoy"],
     "--index: unknown index type 'annoy' (valid: auto, flat, hnsw, ivf, ivfpq)"),
    (["index", "build", "corpus.jsonl", "--out", "x", "--precision", "fp8"],
     "--precision: unknown precision 'fp8' (valid: auto, fp32, bf16)"),
    (["answer", "cases.jsonl", "--mode", "nope"], "--mode: unknown retrieval mode 'nope' (valid: auto, dense, bm25, hybrid)"),
    (["answer", "cases.jsonl", "--format", "html"], "--format: unknown output format 'html' (valid: md, json)"),
    (["answer", "cases.jsonl", "--answer-mode", "all"],
     "--answer-mode: unknown answer mode 'all' (valid: per_question, single_pass)"),
    (["answer", "cases.jsonl", "--strategy-option", "n"], "--strategy-option 'n': expected KEY=VALUE"),
    (["answer", "cases.jsonl", "--option", "=1"], "--option '=1': expected KEY=VALUE"),
])
def test_a_bad_option_value_is_one_line_naming_the_option(argv, message, capsys):
    """Every command reads enums and KEY=VALUE options the same way, before touching any file or model."""
    from clinrag.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
