"""The case schema and loaders: numbered-string splitting, every format, every bad-input error."""

from __future__ import annotations

import json

import pytest
from clinrag.core.cases import (
    Case,
    load_cases,
    load_dataset_rows,
    select_case,
    split_numbered,
)
from clinrag.core.errors import CaseError

from ..conftest import DEMO_CASES


def good(**over):
    row = {"id": "c1", "context": "", "clinical_scenario": "A 60-year-old with chest pain.",
           "questions": ["What is the diagnosis?", "What is the treatment?"]}
    row.update(over)
    return row


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("text,expected", [
    ("1. What is X? 2. How is X treated?", ["What is X?", "How is X treated?"]),
    ("1) a b 2) c", ["a b", "c"]),
    ("Q1: first Q2: second Q3: third", ["first", "second", "third"]),
    ("1. Give 2.5 mg? 2. Why?", ["Give 2.5 mg?", "Why?"]),
    ("1. see step 3. later 2. next", ["see step 3. later", "next"]),
    ("Just one question?", ["Just one question?"]),
    ("Why is 2. mentioned here?", ["Why is 2. mentioned here?"]),
])
def test_split_numbered(text, expected):
    assert split_numbered(text) == expected


def test_questions_and_answers_strings_are_split():
    case = Case.model_validate(good(questions="1. What is it? 2. Why?", answers="1) It is A. 2) Because B."))
    assert case.questions == ["What is it?", "Why?"]
    assert case.answers == ["It is A.", "Because B."]


def test_tolerance_strings_become_floats():
    case = Case.model_validate(good(answer_tolerance=[["1.5", "2"], None]))
    assert case.answer_tolerance == [(1.5, 2.0), None]


def test_every_format_loads_the_same_case(tmp_path):
    row = good(answers=["MI", "PCI"], evidence=[["p1"], ["p2", "p3"]],
               options=[{"A": "MI", "B": "PE"}, None], answer_key=["A", None], meta={"k": 1})
    jl = write_jsonl(tmp_path / "c.jsonl", [row])
    js = tmp_path / "c.json"
    js.write_text(json.dumps([row]))
    single = tmp_path / "one.json"
    single.write_text(json.dumps(row))
    csvp = tmp_path / "c.csv"
    import csv

    with csvp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow({k: (json.dumps(v) if not isinstance(v, str) else v) for k, v in row.items()})
    loaded = [load_cases(p)[0] for p in (jl, js, single, csvp)]
    assert all(c == loaded[0] for c in loaded)
    assert loaded[0].evidence == [["p1"], ["p2", "p3"]]


def test_csv_numbered_questions(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('id,clinical_scenario,questions\nx,"A scenario.","1. What? 2. Why?"\n')
    assert load_cases(p)[0].questions == ["What?", "Why?"]


def test_hf_dataset_loads():
    from datasets import Dataset

    ds = Dataset.from_list([good(id="a", summary=None), good(id="b", summary="s")])  # arrow: None = absent
    cases = load_dataset_rows(ds)
    assert [c.id for c in cases] == ["a", "b"] and cases[0].summary is None and cases[1].summary == "s"
    assert load_cases(ds)[1].id == "b"


def test_demo_cases_load():
    cases = load_cases(DEMO_CASES)
    assert len(cases) >= 5 and all(2 <= c.n_questions <= 4 for c in cases)


@pytest.mark.parametrize("name", ["cases/medquad_multi_dev.jsonl", "cases/pubmedqa_dev.jsonl",
                                  "cases/medcalc_template_dev.jsonl", "sft/casimedicos_en_train.jsonl",
                                  "sft/casimedicos_en_dev.jsonl"])
def test_shared_data_loads_unchanged(shared_data, name):
    path = shared_data / name
    n_lines = sum(1 for line in path.open() if line.strip())
    cases = load_cases(path)
    assert len(cases) == n_lines  # no row dropped


# -- bad input: each error names file, line and field ---------------------------------------------

@pytest.mark.parametrize("row,field,fragment", [
    (good(clinical_scenario="   "), "clinical_scenario", "must not be empty"),
    ({k: v for k, v in good().items() if k != "clinical_scenario"}, "clinical_scenario", "required"),
    (good(questions=[]), "questions", "at least one question"),
    (good(questions=""), "questions", "at least one question"),
    (good(questions=["ok?", " "]), "questions", "question 2 is empty"),
    (good(answers=["only one"]), "answers", "has 1 items but there are 2 questions"),
    (good(evidence=[["p"]]), "evidence", "align"),
    (good(questions=42), "questions", "list"),
    (good(clinical_scenario=["not", "a", "string"]), "clinical_scenario", "string"),
    (good(unknown_field=1), "unknown_field", "unknown field"),
    (good(options=[{"A": "x"}, None], answer_key=["B", None]), "answer_key", "not one of the options"),
    (good(answer_tolerance=[[2, 1], None]), "answer_tolerance", "above high bound"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, row, field, fragment):
    path = write_jsonl(tmp_path / "bad.jsonl", [good(id="ok"), row])
    with pytest.raises(CaseError) as err:
        load_cases(path)
    e = err.value
    assert e.source == str(path) and e.line == 2 and e.field is not None and e.field.startswith(field)
    assert fragment in str(e) and f"{path}, line 2, field '{field}" in str(e)


def test_invalid_json_names_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [good(), '{"id": "x", oops}'])
    with pytest.raises(CaseError, match=r"bad.jsonl, line 2: invalid JSON"):
        load_cases(path)


def test_non_object_row(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", ["[1, 2]"])
    with pytest.raises(CaseError, match="line 1: expected a JSON object"):
        load_cases(path)


def test_duplicate_ids(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [good(id="a"), good(id="b"), good(id="a")])
    with pytest.raises(CaseError, match=r"line 3, field 'id': duplicate id 'a' \(first seen at line 1\)"):
        load_cases(path)


def test_csv_error_names_row(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('id,clinical_scenario,questions\nx,"ok","1. a?"\ny,"","1. b?"\n')
    with pytest.raises(CaseError, match=r"row 2, field 'clinical_scenario'"):
        load_cases(p)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(CaseError, match="no cases found"):
        load_cases(tmp_path / "empty.jsonl")
    with pytest.raises(CaseError, match="file not found"):
        load_cases(tmp_path / "nope.jsonl")
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(CaseError, match="valid: jsonl, json, csv"):
        load_cases(tmp_path / "x.xml")


def test_select_case():
    cases = [Case.model_validate(good(id=i)) for i in ("a", "b")]
    assert select_case(cases, "b")[0].id == "b"
    with pytest.raises(CaseError, match="no case with id 'z'"):
        select_case(cases, "z")
