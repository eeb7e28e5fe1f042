"""CLI start-up: fast and free of torch."""

from __future__ import annotations

import subprocess
import sys


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


def test_bad_option_value_is_a_usage_error_not_a_traceback(capsys):
    from clinrag.cli import main

    assert main(["index", "search", "idx", "query", "--mode", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope' is not one of 'dense', 'bm25', 'hybrid'" in err and "Traceback" not in err
