"""Output folders: written whole, never over the user's files; stale temp folders of a killed run are cleaned."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from clinrag.core.io import (
    OUTPUT_MARKER,
    OutputError,
    atomic_dir_write,
    atomic_file_write,
    claim_output_dir,
    read_marker,
    remove_own_output,
)


def _write(files: dict[str, str]):
    def write(tmp):
        for name, text in files.items():
            (tmp / name).write_text(text)
    return write


def test_writes_absent_and_empty_folders_and_replaces_its_own(tmp_path):
    out = tmp_path / "a" / "out"
    atomic_dir_write(out, _write({"x.txt": "1"}), kind="demo")
    assert (out / "x.txt").read_text() == "1" and read_marker(out)["files"] == ["x.txt"]
    atomic_dir_write(out, _write({"y.txt": "2"}), kind="demo")
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "y.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    atomic_dir_write(empty, _write({"z": "3"}), kind="demo")
    assert (empty / "z").read_text() == "3"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_refuses_user_folders_other_kinds_and_added_files(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    with pytest.raises(OutputError, match="not empty and was not written by clinrag"):
        atomic_dir_write(mine, _write({"x": "1"}), kind="demo")
    assert (mine / "thesis.docx").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    other = tmp_path / "other"
    atomic_dir_write(other, _write({"x": "1"}), kind="index")
    with pytest.raises(OutputError, match="another command"):
        atomic_dir_write(other, _write({"x": "2"}), kind="demo")
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write.*notes.txt"):
        atomic_dir_write(other, _write({"x": "2"}), kind="index")
    assert (other / "x").read_text() == "1" and (other / "notes.txt").read_text() == "mine"


def test_legacy_folders_are_recognised_by_their_manifest(tmp_path):
    old = tmp_path / "old-index"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    atomic_dir_write(old, _write({"manifest.json": "{\"v\": 2}"}), kind="index", legacy=("manifest.json",))
    assert json.loads((old / "manifest.json").read_text()) == {"v": 2}


def test_file_at_out_current_folder_and_unwritable_parent_are_one_line(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("keep")
    with pytest.raises(OutputError, match="is a file"):
        atomic_dir_write(f, _write({}), kind="demo")
    assert f.read_text() == "keep" and not list(tmp_path.glob(".file*"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="current folder"):
        atomic_dir_write(tmp_path / ".", _write({}), kind="demo")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="not writable"):
                atomic_dir_write(ro / "out", _write({}), kind="demo")
        finally:
            ro.chmod(0o755)


def test_failed_write_leaves_out_untouched(tmp_path):
    out = tmp_path / "out"
    atomic_dir_write(out, _write({"x": "1"}), kind="demo")

    def boom(tmp):
        (tmp / "x").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_dir_write(out, boom, kind="demo")
    assert (out / "x").read_text() == "1" and not list(tmp_path.glob(".out.*"))


def test_stale_temp_folders_of_a_dead_run_are_cleaned_only_when_ours(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".out.tmp-{pid}-abc"
    stale.mkdir()
    (stale / OUTPUT_MARKER).write_text(json.dumps({"kind": "demo", "pid": pid}))
    foreign = tmp_path / ".out.tmp-users-own"
    foreign.mkdir()
    atomic_dir_write(tmp_path / "out", _write({"x": "1"}), kind="demo")
    assert not stale.exists() and foreign.exists()


def test_claim_and_remove_own_output(tmp_path):
    out = tmp_path / "eval"
    assert claim_output_dir(out, "evaluate") is False
    (out / "metrics.json").write_text("{}")
    assert claim_output_dir(out, "evaluate") is True
    (out / "mine.txt").write_text("x")
    with pytest.raises(OutputError, match="mine.txt"):
        remove_own_output(out, "evaluate", allowed=lambda n: n.endswith(".json"))
    (out / "mine.txt").unlink()
    remove_own_output(out, "evaluate", allowed=lambda n: n.endswith(".json"))
    assert not out.exists()


def test_atomic_file_write(tmp_path):
    path = atomic_file_write(tmp_path / "d" / "r.json", "{}")
    assert path.read_text() == "{}"
    with pytest.raises(OutputError, match="is a folder"):
        atomic_file_write(tmp_path / "d", "x")
