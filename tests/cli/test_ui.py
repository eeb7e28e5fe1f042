"""``clinrag ui`` fails in one line, before any port opens, on what a user can fix."""

from __future__ import annotations

from clinrag.cli import main


def test_bad_options_are_one_line_errors(capsys, tmp_path):
    assert main(["ui", "--mode", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "error: --mode: unknown retrieval mode 'nope' (valid: auto, dense, bm25, hybrid)"
    assert main(["ui", "--cases", str(tmp_path / "missing.jsonl")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {tmp_path / 'missing.jsonl'}: file not found"
