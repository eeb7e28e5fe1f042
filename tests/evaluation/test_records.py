"""Resume: a stored result is reused only when complete and computed from the same case, arm and inputs."""

from __future__ import annotations

import json

from clinrag.core.cases import Case
from clinrag.evaluation.records import (
    CHANGED,
    FAILED,
    INCOMPLETE,
    INPUTS,
    OLD,
    case_hash,
    input_key,
    inputs_fingerprint,
    load_records,
    plan_resume,
)
from clinrag.evaluation.runner import Arm

ARM = Arm("none", "none", "extractive")
CASE = Case(id="c1", clinical_scenario="A man.", questions=["Q1?", "Q2?", "Q3?"], answers=["a", "b", "c"])
INPUTS_A = inputs_fingerprint({"k": 3}, {"checksum": "x"})


def _rows(case, key, n=None, error=None):
    n = case.n_questions if n is None else n
    return [{"arm": ARM.name, "case_id": case.id, "question_index": i + 1, "rows_in_case": case.n_questions,
             "input_key": key, "error": error} for i in range(n)]


def test_complete_matching_results_are_reused():
    key = input_key(case_hash(CASE), ARM, INPUTS_A)
    resume = plan_resume(_rows(CASE, key), {(ARM.name, CASE.id): key})
    assert resume.done == {(ARM.name, CASE.id)} and len(resume.kept) == 3 and not resume.recomputed


def test_cut_short_changed_inputs_failed_and_old_results_are_recomputed_with_reasons():
    key = input_key(case_hash(CASE), ARM, INPUTS_A)
    keys = {(ARM.name, CASE.id): key}
    assert plan_resume(_rows(CASE, key, n=2), keys).recomputed == {INCOMPLETE: 1}
    edited = CASE.model_copy(update={"answers": ["a", "b", "new reference"]})
    new_key = input_key(case_hash(edited), ARM, INPUTS_A)
    assert plan_resume(_rows(CASE, key), {(ARM.name, CASE.id): new_key}).recomputed == {CHANGED: 1}
    rebuilt = input_key(case_hash(CASE), ARM, inputs_fingerprint({"k": 3}, {"checksum": "y"}))
    assert plan_resume(_rows(CASE, key), {(ARM.name, CASE.id): rebuilt}).recomputed == {INPUTS: 1}
    assert plan_resume(_rows(CASE, key, error="boom"), keys).recomputed == {FAILED: 1}
    old = [{k: v for k, v in r.items() if k != "input_key"} for r in _rows(CASE, key)]
    resume = plan_resume(old, keys)
    assert resume.recomputed == {OLD: 1} and not resume.kept and not resume.done
    assert resume.describe() == f"1 (1 {OLD})"


def test_results_of_cases_outside_the_run_are_kept_only_when_complete():
    key = input_key(case_hash(CASE), ARM, INPUTS_A)
    assert len(plan_resume(_rows(CASE, key), {}).kept) == 3
    assert plan_resume(_rows(CASE, key, n=1), {}).kept == []


def test_load_records_skips_cut_lines_and_non_records(tmp_path):
    path = tmp_path / "per_question.jsonl"
    good = json.dumps({"arm": "a", "case_id": "c"})
    path.write_text(f"{good}\n[1, 2]\n{good[:10]}", encoding="utf-8")
    assert load_records(path) == [{"arm": "a", "case_id": "c"}]
