"""experiments/real_model/dtype_parity.py: the #15 gate that pairs a lower-precision evaluation with the float32 one."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "real_model" / "dtype_parity.py"


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location("dtype_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(arm: str, decisions: list[list[float]], *, errored: set[int] = frozenset()) -> list[dict]:
    """Evaluation records: one case per inner list, one question per value (decision_accuracy 0/1)."""
    out = []
    for c, values in enumerate(decisions):
        for q, value in enumerate(values, 1):
            out.append({"arm": arm, "case_id": f"c{c}", "question_index": q, "rows_in_case": len(values),
                        "error": "RuntimeError: boom" if c in errored else None,
                        "metrics": {"decision_accuracy": value, "token_f1": value / 2}, "case": {}})
    return out


GOLD = [[1.0], [0.0], [1.0], [1.0], [0.0], [1.0], [0.0], [1.0], [1.0], [0.0]] * 3  # 30 cases, mean 0.6


def test_identical_answers_lie_inside_the_reference_interval_with_zero_difference(parity):
    result = parity.compare(rows("tuned", GOLD), rows("tuned", GOLD))
    block = result["tuned"]
    assert block["cases"] == 30 and block["errored_cases"] == {"reference": 0, "candidate": 0}
    m = block["metrics"]["decision_accuracy"]
    assert m["candidate"] == m["reference"] == 0.6 and m["within_reference_ci"] is True
    assert m["reference_ci"][0] < 0.6 < m["reference_ci"][1]
    assert m["paired_difference"]["diff"] == 0.0
    assert set(block["metrics"]) == {"decision_accuracy", "token_f1"}  # metrics absent from the records are skipped


def test_a_real_shift_falls_outside_and_errored_cases_are_counted_not_compared(parity):
    worse = [[0.0]] * 30
    block = parity.compare(rows("tuned", GOLD), rows("tuned", worse, errored={0, 1}))["tuned"]
    assert block["cases"] == 28 and block["errored_cases"] == {"reference": 0, "candidate": 2}
    m = block["metrics"]["decision_accuracy"]
    assert m["candidate"] == 0.0 and m["within_reference_ci"] is False
    assert m["paired_difference"]["ci_high"] < 0 and m["paired_difference"]["significant"]  # wholly below zero


def test_cut_short_cases_and_arms_in_one_run_only_are_left_out(parity):
    ref = rows("tuned", [[1.0, 0.0]] * 5) + rows("base", [[1.0]] * 5)
    cand = [r for r in rows("tuned", [[1.0, 1.0]] * 5) if not (r["case_id"] == "c4" and r["question_index"] == 2)]
    result = parity.compare(ref, cand)
    assert set(result) == {"tuned"} and result["tuned"]["cases"] == 4
    assert result["tuned"]["metrics"]["decision_accuracy"]["candidate"] == 1.0


def test_command_writes_the_report_and_refuses_a_folder_without_records(tmp_path):
    ref, cand = tmp_path / "f32", tmp_path / "bf16"
    for folder, decisions in ((ref, GOLD), (cand, GOLD)):
        folder.mkdir()
        (folder / "per_question.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows("tuned", decisions)), encoding="utf-8")
    out = tmp_path / "parity.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(ref), str(cand), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["arms"]["tuned"]["metrics"]["decision_accuracy"]["within_reference_ci"] is True
    missing = subprocess.run([sys.executable, str(SCRIPT), str(ref), str(tmp_path / "nothing")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "nothing/per_question.jsonl: no evaluation records" in missing.stderr
