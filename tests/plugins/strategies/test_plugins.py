"""A third-party strategy is found through the ``clinrag.strategies`` entry-point group, like the built-ins.

A throw-away distribution (a module plus a ``*.dist-info`` with METADATA and entry_points.txt) is written to
tmp_path and put on PYTHONPATH of a fresh ``python -m clinrag.cli`` process, which lists it and answers with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ...conftest import DEMO_CASES

PLUGIN = '''
"""A throw-away strategy: each question retrieved on its own words only (no scenario)."""
from clinrag.plugins.strategies.base import Translation
from clinrag.core.types import Query, SubQuestion


class QuestionOnly:
    name = "question_only"
    description = "Test plugin: each question alone, no scenario."
    llm_calls_per_question = 0

    def __init__(self, *, tag: str = "plain"):
        self.tag = tag

    def translate(self, case, llm=None, budget=None):
        subs = [SubQuestion(f"q{i + 1}", i, q, (Query(q),)) for i, q in enumerate(case.questions)]
        return Translation(subs, notes=[f"question_only plugin ({self.tag}) was used"])
'''


@pytest.fixture
def plugin_path(tmp_path):
    (tmp_path / "clinrag_question_only.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    dist = tmp_path / "clinrag_question_only-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clinrag-question-only\nVersion: 0.1\n",
                                   encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[clinrag.strategies]\nquestion_only = clinrag_question_only:QuestionOnly\n", encoding="utf-8")
    return tmp_path


def clinrag(args, plugin_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "clinrag.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_strategies_list_shows_the_installed_plugin(plugin_path):
    out = clinrag(["strategies", "list"], plugin_path)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "question_only" in line)
    assert "Test plugin: each question alone" in row and " 0 " in row
    assert "decomposition" in out.stdout and "rag_fusion" in out.stdout


@pytest.mark.slow
def test_answer_selects_the_plugin_by_name(plugin_path, demo_index_dir):
    out = clinrag(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--case-id", "demo-inferior-stemi",
                   "--strategy", "Question_Only", "--strategy-option", "tag=custom", "--format", "json"], plugin_path)
    assert out.returncode == 0, out.stderr
    resp = json.loads(out.stdout)
    assert resp["strategy"] == "question_only" and len(resp["answers"]) == 4
    assert resp["notes"] == ["question_only plugin (custom) was used"]
    assert [sq["id"] for a in resp["answers"] for sq in a["sub_questions"]] == ["q1", "q2", "q3", "q4"]
