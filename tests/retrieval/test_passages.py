"""Passage ingestion: JSONL, text files, folders, HF datasets; duplicates and empty texts are errors."""

from __future__ import annotations

import json

import pytest
from clinrag.retrieval.passages import PassageError, load_passages


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_text_and_folder(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"id": "p1", "title": "T", "text": "Body.", "source": "S"}])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "b.md").write_text("# Heading\n\nSome text.", encoding="utf-8")
    ps = load_passages([tmp_path / "a.jsonl", tmp_path / "notes"])
    assert [(p.id, p.title) for p in ps] == [("p1", "T"), ("b.md", "Heading")]
    assert ps[0].metadata == {"source": "S"}


def test_duplicate_ids_name_both_places(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "p1", "text": "x"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "p2", "text": "y"}, {"id": "p1", "text": "z"}])
    with pytest.raises(PassageError, match=r"duplicate passage id 'p1'.*b\.jsonl: line 2.*a\.jsonl: line 1"):
        load_passages([a, b])


def test_empty_text_and_bad_json_name_file_and_line(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "p1", "text": "ok"}, {"id": "p2", "text": "  "}])
    with pytest.raises(PassageError, match=r"bad\.jsonl: line 2: field 'text': passage 'p2' has no text"):
        load_passages([bad])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "p1", "text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(PassageError, match=r"broken\.jsonl: line 2: invalid JSON"):
        load_passages([broken])
    (tmp_path / "x.csv").write_text("id,text\n", encoding="utf-8")
    with pytest.raises(PassageError, match="unsupported passage file"):
        load_passages([tmp_path / "x.csv"])


def test_hf_dataset_object_and_saved_folder(tmp_path):
    from datasets import Dataset

    ds = Dataset.from_list([{"id": "d1", "title": "A", "text": "First.", "source": "hf"},
                            {"id": "d2", "title": "B", "text": "Second.", "source": "hf"}])
    ps = load_passages([ds])
    assert [p.id for p in ps] == ["d1", "d2"] and ps[1].metadata == {"source": "hf"}
    ds.save_to_disk(str(tmp_path / "saved"))
    assert [p.text for p in load_passages([tmp_path / "saved"])] == ["First.", "Second."]
    bad = Dataset.from_list([{"id": "d1", "text": ""}])
    with pytest.raises(PassageError, match="row 0: field 'text'"):
        load_passages([bad])
