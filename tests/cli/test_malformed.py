"""A table of bad inputs across the commands: each exits with its code, prints one error line and no traceback,
and leaves every file the user owned as it was (hashed before and after).

Runs in-process (``clinrag.cli.main``) with the extractive generator; the kill tests are in ``test_interrupts.py``.
A case is ``Bad(id, argv, setup)``: ``setup(ws)`` writes the bad input into the workspace ``ws`` (a copy of good
inputs and a demo index) and ``argv`` may use ``{ws}``. ``serve`` cases here are what fails before the port opens;
malformed HTTP requests to a running server are in ``tests/serving/test_http_hardening.py``. Another front end can
add a runner to ``RUNNERS`` and cases with ``runner=NAME``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clinrag.cli import main
from clinrag.core.io import OUTPUT_MARKER


REPO = Path(__file__).resolve().parents[2]
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"
DEMO_KB = REPO / "examples" / "demo" / "knowledge_base.jsonl"

GOOD_CASE = json.loads(DEMO_CASES.read_text(encoding="utf-8").splitlines()[0])
MINI = {"id": "m1", "clinical_scenario": "A 60-year-old man has chest pain.", "questions": ["Diagnosis?"]}


def jl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        for s in setups:
            s(ws)
    return setup


def user_folder(rel: str) -> Callable[[Path], None]:
    return write(f"{rel}/thesis.md", "# my own work\n")


def edited_index(rel: str, edit: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        shutil.copytree(ws / "index", ws / rel)
        edit(ws / rel)
    return setup


def _drop_manifest_key(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["dimension"]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _truncate(name: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return edit


def _marked(rel: str, kind: str) -> Callable[[Path], None]:
    def setup(ws: Path) -> None:
        (ws / rel).mkdir(parents=True)
        (ws / rel / OUTPUT_MARKER).write_text(json.dumps({"kind": kind, "files": ["x"]}))
        (ws / rel / "x").write_text("output of another command")
    return setup


DEEP = "[" * 100_000 + "]" * 100_000
NONE = lambda ws: None  # noqa: E731 - the good workspace as is


@dataclass(frozen=True)
class Bad:
    id: str
    argv: list[str]
    setup: Callable[[Path], None] = NONE
    code: int = 2
    runner: str = "cli"
    marks: tuple = field(default=())


A = ["answer", "{ws}/cases.jsonl", "--index", "{ws}/index"]


def answer_with(rel: str) -> list[str]:
    return ["answer", "{ws}/" + rel, "--index", "{ws}/index"]


CASES = [
    # -- answer: the case file -----------------------------------------------------------------------------
    Bad("answer-missing-file", answer_with("nope.jsonl")),
    Bad("answer-folder-as-file", answer_with("adir.jsonl"), write("adir.jsonl/x", "x")),
    Bad("answer-empty-file", answer_with("e.jsonl"), write("e.jsonl", "")),
    Bad("answer-invalid-json", answer_with("b.jsonl"), write("b.jsonl", jl(MINI, "{\"id\": "))),
    Bad("answer-row-not-object", answer_with("b.jsonl"), write("b.jsonl", jl([1, 2]))),
    Bad("answer-missing-scenario", answer_with("b.jsonl"), write("b.jsonl", jl({"id": "x", "questions": ["q"]}))),
    Bad("answer-empty-questions", answer_with("b.jsonl"), write("b.jsonl", jl({**MINI, "questions": []}))),
    Bad("answer-blank-question", answer_with("b.jsonl"), write("b.jsonl", jl({**MINI, "questions": [" "]}))),
    Bad("answer-unknown-field", answer_with("b.jsonl"), write("b.jsonl", jl({**MINI, "scenaro": "x"}))),
    Bad("answer-misaligned-answers", answer_with("b.jsonl"), write("b.jsonl", jl({**MINI, "answers": ["a", "b"]}))),
    Bad("answer-key-not-an-option", answer_with("b.jsonl"),
        write("b.jsonl", jl({**MINI, "options": [{"A": "x", "B": "y"}], "answer_key": ["C"]}))),
    Bad("answer-nan-tolerance", answer_with("b.jsonl"),
        write("b.jsonl", '{"id": "x", "clinical_scenario": "s", "questions": ["q"], "answer_tolerance": [[NaN, 1]]}\n')),
    Bad("answer-infinite-tolerance", answer_with("b.jsonl"),
        write("b.jsonl", '{"id": "x", "clinical_scenario": "s", "questions": ["q"], '
                         '"answer_tolerance": [[0, Infinity]]}\n')),
    Bad("answer-tolerance-reversed", answer_with("b.jsonl"),
        write("b.jsonl", jl({**MINI, "answer_tolerance": [[5, 1]]}))),
    Bad("answer-duplicate-ids", answer_with("b.jsonl"), write("b.jsonl", jl(MINI, MINI))),
    Bad("answer-latin1", answer_with("l.jsonl"),
        write("l.jsonl", json.dumps({**MINI, "clinical_scenario": "Café"}, ensure_ascii=False).encode("latin-1"))),
    Bad("answer-utf16-without-bom", answer_with("u.jsonl"), write("u.jsonl", jl(MINI).encode("utf-16-le"))),
    Bad("answer-deep-json", answer_with("d.jsonl"), write("d.jsonl", DEEP + "\n")),
    Bad("answer-deep-json-array-file", answer_with("d.json"), write("d.json", DEEP)),
    Bad("answer-invalid-json-file", answer_with("b.json"), write("b.json", "[{\"id\": 1,]")),
    Bad("answer-csv-extra-cells", answer_with("b.csv"), write("b.csv", "id,clinical_scenario,questions\nx,s,q,extra\n")),
    Bad("answer-csv-bad-evidence", answer_with("b.csv"),
        write("b.csv", "id,clinical_scenario,questions,evidence\nx,s,q,[not json\n")),
    Bad("answer-unknown-suffix", answer_with("b.txt"), write("b.txt", "a case")),
    Bad("answer-unknown-case-id", [*A, "--case-id", "nope"]),
    Bad("answer-bad-format", [*A, "--format", "xml"]),
    Bad("answer-bad-mode", [*A, "--mode", "semantic"]),
    Bad("answer-unknown-strategy", [*A, "--strategy", "nope"]),
    Bad("answer-unknown-generator", [*A, "--generator", "nope"]),
    Bad("answer-unknown-generator-option", [*A, "--option", "foo=1"]),
    Bad("answer-option-without-value", [*A, "--option", "novalue"]),
    Bad("answer-bad-answer-mode", [*A, "--answer-mode", "fast"]),
    Bad("answer-bad-on-bad-rows", [*A, "--on-bad-rows", "ignore"]),
    Bad("answer-k-zero", [*A, "-k", "0"]),
    Bad("answer-index-missing", ["answer", "{ws}/cases.jsonl", "--index", "{ws}/noindex"]),
    Bad("answer-index-is-user-folder", ["answer", "{ws}/cases.jsonl", "--index", "{ws}/mine"], user_folder("mine")),
    Bad("answer-index-manifest-corrupt", ["answer", "{ws}/cases.jsonl", "--index", "{ws}/idx2"],
        edited_index("idx2", _truncate("manifest.json"))),
    Bad("answer-index-manifest-missing-key", ["answer", "{ws}/cases.jsonl", "--index", "{ws}/idx2"],
        edited_index("idx2", _drop_manifest_key)),
    Bad("answer-index-passages-truncated", ["answer", "{ws}/cases.jsonl", "--index", "{ws}/idx2"],
        edited_index("idx2", _truncate("passages.jsonl"))),
    Bad("answer-index-faiss-truncated", ["answer", "{ws}/cases.jsonl", "--index", "{ws}/idx2"],
        edited_index("idx2", _truncate("dense.faiss"))),
    # -- index ---------------------------------------------------------------------------------------------
    Bad("index-build-missing-corpus", ["index", "build", "{ws}/nope.jsonl", "--out", "{ws}/new"]),
    Bad("index-build-invalid-json", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"id": "a", "text": "t"}, "{oops"))),
    Bad("index-build-id-list", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"id": ["a", "b"], "text": "t"}))),
    Bad("index-build-id-object", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"id": {"a": 1}, "text": "t"}))),
    Bad("index-build-id-bool", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"id": True, "text": "t"}))),
    Bad("index-build-empty-text", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"id": "a", "text": "  "}))),
    Bad("index-build-missing-id", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"text": "t"}))),
    Bad("index-build-duplicate-ids", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"],
        write("c.jsonl", jl({"id": "a", "text": "t"}, {"id": "a", "text": "u"}))),
    Bad("index-build-latin1-txt", ["index", "build", "{ws}/p.txt", "--out", "{ws}/new"],
        write("p.txt", "Caf\xe9 au lait\n".encode("latin-1"))),
    Bad("index-build-latin1-folder", ["index", "build", "{ws}/docs", "--out", "{ws}/new"],
        both(write("docs/a.md", "# fine\n"), write("docs/b.txt", b"line one\ncaf\xe9\n"))),
    Bad("index-build-empty-txt", ["index", "build", "{ws}/p.txt", "--out", "{ws}/new"], write("p.txt", "\n\n")),
    Bad("index-build-unsupported-suffix", ["index", "build", "{ws}/p.pdf", "--out", "{ws}/new"], write("p.pdf", "%PDF")),
    Bad("index-build-deep-json", ["index", "build", "{ws}/c.jsonl", "--out", "{ws}/new"], write("c.jsonl", DEEP)),
    Bad("index-build-out-is-file", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/out.txt"],
        write("out.txt", "my notes")),
    Bad("index-build-out-user-folder", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/mine"], user_folder("mine")),
    Bad("index-build-out-current-folder", ["index", "build", "{ws}/kb.jsonl", "--out", "."]),
    Bad("index-build-out-under-a-file", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/f/sub"], write("f", "x")),
    Bad("index-build-out-other-command", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/aud"],
        _marked("aud", "vocab-audit")),
    Bad("index-build-bad-index-type", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/new", "--index", "lsh"]),
    Bad("index-build-bad-precision", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/new", "--precision", "fp8"]),
    Bad("index-build-bad-on-bad-rows", ["index", "build", "{ws}/kb.jsonl", "--out", "{ws}/new", "--on-bad-rows", "x"]),
    Bad("index-search-empty-query", ["index", "search", "{ws}/index", "  "]),
    Bad("index-search-missing-index", ["index", "search", "{ws}/noindex", "chest pain"]),
    Bad("index-search-bad-mode", ["index", "search", "{ws}/index", "chest pain", "--mode", "x"]),
    Bad("index-search-bad-filter", ["index", "search", "{ws}/index", "chest pain", "--filter", "year"]),
    Bad("index-info-user-folder", ["index", "info", "{ws}/mine"], user_folder("mine")),
    Bad("index-info-manifest-deep", ["index", "info", "{ws}/idx2"],
        edited_index("idx2", lambda f: (f / "manifest.json").write_text(DEEP))),
    Bad("index-evaluate-missing-cases", ["index", "evaluate", "{ws}/index", "{ws}/nope.jsonl"]),
    # -- evaluate ------------------------------------------------------------------------------------------
    Bad("evaluate-invalid-cases", ["evaluate", "{ws}/b.jsonl", "--index", "{ws}/index", "--out", "{ws}/ev"],
        write("b.jsonl", jl(MINI, "[")), ),
    Bad("evaluate-unknown-strategy", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies", "x"]),
    Bad("evaluate-unknown-generator", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--generator", "x"]),
    Bad("evaluate-two-adapters-one-name", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--generator",
                                           "hf", "--adapter", "{ws}/a/tuned", "--adapter", "{ws}/b/tuned"]),
    Bad("evaluate-out-is-file", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies", "none",
                                 "--out", "{ws}/out.txt"], write("out.txt", "notes")),
    Bad("evaluate-out-user-folder", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies", "none",
                                     "--out", "{ws}/mine"], user_folder("mine")),
    Bad("evaluate-overwrite-user-folder", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies",
                                           "none", "--out", "{ws}/mine", "--overwrite"], user_folder("mine")),
    Bad("evaluate-corrupt-run-json", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies", "none",
                                      "--out", "{ws}/ev"],
        both(_marked("ev", "evaluate"), write("ev/run.json", "{not json"))),
    Bad("evaluate-deep-run-json", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies", "none",
                                   "--out", "{ws}/ev"], both(_marked("ev", "evaluate"), write("ev/run.json", DEEP))),
    Bad("evaluate-other-config", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--strategies", "none",
                                  "--out", "{ws}/ev"],
        both(_marked("ev", "evaluate"), write("ev/run.json", json.dumps({"k": 99})))),
    Bad("evaluate-index-missing", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/noindex", "--strategies", "none",
                                   "--out", "{ws}/ev"]),
    Bad("evaluate-bad-on-bad-rows", ["evaluate", "{ws}/cases.jsonl", "--index", "{ws}/index", "--on-bad-rows", "x"]),
    # -- vocab ---------------------------------------------------------------------------------------------
    Bad("vocab-audit-missing-data", ["vocab", "audit", "{ws}/nope.jsonl", "--out", "{ws}/aud"]),
    Bad("vocab-audit-bad-row", ["vocab", "audit", "{ws}/b.jsonl", "--out", "{ws}/aud"],
        write("b.jsonl", jl(MINI, {**MINI, "id": "m2", "options": [{"A": "x"}], "answer_key": ["B"]}))),
    Bad("vocab-audit-latin1", ["vocab", "audit", "{ws}/l.jsonl", "--out", "{ws}/aud"],
        write("l.jsonl", json.dumps({**MINI, "clinical_scenario": "Café"}, ensure_ascii=False).encode("latin-1"))),
    Bad("vocab-extend-missing-terms", ["vocab", "extend", "--model", "{ws}/nomodel", "--terms", "{ws}/nope.txt",
                                       "--out", "{ws}/ext"]),
    Bad("vocab-extend-latin1-terms", ["vocab", "extend", "--model", "{ws}/nomodel", "--terms", "{ws}/t.txt",
                                      "--out", "{ws}/ext"], write("t.txt", "caf\xe9\n".encode("latin-1"))),
    Bad("vocab-extend-bad-init", ["vocab", "extend", "--model", "{ws}/nomodel", "--terms", "{ws}/t.txt",
                                  "--out", "{ws}/ext", "--init", "zeros"], write("t.txt", "troponin\n")),
    Bad("vocab-extend-missing-model", ["vocab", "extend", "--model", "{ws}/nomodel", "--terms", "{ws}/t.txt",
                                       "--out", "{ws}/ext"], write("t.txt", "troponin\n")),
    Bad("vocab-tokenizer-bad-variant", ["vocab", "tokenizer", "--out", "{ws}/tok", "--variant", "chat"]),
    Bad("vocab-tokenizer-out-user-folder", ["vocab", "tokenizer", "--out", "{ws}/mine"], user_folder("mine")),
    # -- finetune, export, augment --------------------------------------------------------------------------
    Bad("finetune-missing-config", ["finetune", "--config", "{ws}/nope.yaml"]),
    Bad("finetune-invalid-yaml", ["finetune", "--config", "{ws}/c.yaml"], write("c.yaml", "model: [unclosed\n")),
    Bad("finetune-latin1-yaml", ["finetune", "--config", "{ws}/c.yaml"], write("c.yaml", "model: caf\xe9\n".encode("latin-1"))),
    Bad("finetune-deep-yaml", ["finetune", "--config", "{ws}/c.yaml"], write("c.yaml", "a: " + "[" * 5000 + "]" * 5000)),
    Bad("finetune-unknown-section", ["finetune", "--config", "{ws}/c.yaml"], write("c.yaml", "trainer:\n  lr: 1\n")),
    Bad("finetune-bad-mode", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/cases.jsonl", "--mode", "halfrank"]),
    Bad("finetune-missing-data", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/nope.jsonl", "--out", "{ws}/ft"]),
    Bad("finetune-bad-data-row", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/b.jsonl", "--out", "{ws}/ft"],
        write("b.jsonl", jl(MINI, {"id": "x"}))),
    Bad("finetune-bad-on-bad-rows", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/cases.jsonl", "--out", "{ws}/ft", "--on-bad-rows", "x"]),
    Bad("finetune-out-user-folder", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/cases.jsonl", "--out", "{ws}/mine"],
        user_folder("mine")),
    Bad("finetune-out-other-command", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/cases.jsonl", "--out", "{ws}/index"]),
    Bad("finetune-out-is-file", ["finetune", "--model", "{ws}/nomodel", "--data", "{ws}/cases.jsonl", "--out", "{ws}/kb.jsonl"]),
    Bad("export-missing-adapter", ["export", "--base", "{ws}/nomodel", "--adapter", "{ws}/noadapter", "--out", "{ws}/m"]),
    Bad("export-pickle-only-adapter", ["export", "--base", "{ws}/nomodel", "--adapter", "{ws}/ad", "--out", "{ws}/m"],
        both(write("ad/adapter_config.json", "{}"), write("ad/adapter_model.bin", b"\x80\x04pickle"))),
    Bad("augment-out-is-input", ["augment", "{ws}/cases.jsonl", "--out", "{ws}/cases.jsonl"]),
    # -- serve: what fails before the port opens (malformed HTTP requests: tests/serving/test_http_hardening.py) --
    Bad("serve-missing-model", ["serve", "--model", "{ws}/nomodel"]),
    Bad("serve-model-folder-without-weights", ["serve", "--model", "{ws}/m"], write("m/config.json", "{}")),
    Bad("serve-pickle-only-model", ["serve", "--model", "{ws}/m"],
        both(write("m/config.json", json.dumps({"model_type": "llama"})), write("m/pytorch_model.bin", b"\x80\x04pickle"))),
    Bad("serve-corrupt-model-config", ["serve", "--model", "{ws}/m"],
        both(write("m/config.json", "{"), write("m/model.safetensors", b"x"))),
    Bad("serve-not-a-gguf", ["serve", "--model", "{ws}/m.gguf"], write("m.gguf", b"not a gguf file")),
    Bad("serve-bad-dtype", ["serve", "--model", "{ws}/nomodel", "--dtype", "float8"]),
    Bad("serve-bad-device", ["serve", "--model", "{ws}/nomodel", "--device", "tpu"]),
    Bad("serve-port-out-of-range", ["serve", "--port", "70000"]),
    Bad("serve-zero-batch", ["serve", "--max-batch", "0"]),
    Bad("serve-zero-read-timeout", ["serve", "--read-timeout", "0"]),
    Bad("serve-zero-max-new-tokens", ["serve", "--max-new-tokens", "0"]),
]


def _run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


RUNNERS: dict[str, Callable[[list[str], object], tuple[int, str]]] = {"cli": _run_cli}


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory, demo_index_dir) -> Path:
    ws = tmp_path_factory.mktemp("template")
    (ws / "cases.jsonl").write_text(jl(GOOD_CASE, MINI), encoding="utf-8")
    shutil.copy(DEMO_KB, ws / "kb.jsonl")
    shutil.copytree(demo_index_dir, ws / "index")
    return ws


@pytest.fixture
def workspace(template, tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    monkeypatch.chdir(ws)
    return ws


def test_the_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_touches_nothing(bad: Bad, workspace: Path, capsys):
    bad.setup(workspace)
    before = _snapshot(workspace)
    code, err = RUNNERS[bad.runner]([a.replace("{ws}", str(workspace)) for a in bad.argv], capsys)
    assert code == bad.code, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.lower().startswith("error")]
    assert len(errors) == 1, err
    assert _snapshot(workspace) == before, "files changed, appeared or disappeared"


def test_skip_reports_every_bad_row_and_the_count(workspace: Path, capsys):
    (workspace / "b.jsonl").write_text(jl(MINI, {"id": "x"}, "{", {**MINI, "id": "m2"}, MINI), encoding="utf-8")
    code = main(["answer", str(workspace / "b.jsonl"), "--index", str(workspace / "index"), "--format", "json",
                 "--on-bad-rows", "skip"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    skipped = [ln for ln in captured.err.splitlines() if ln.startswith("skipped bad row")]
    assert len(skipped) == 3
    assert "line 2, field 'clinical_scenario'" in skipped[0] and "line 3: invalid JSON" in skipped[1]
    assert "line 5, field 'id': duplicate id 'm1'" in skipped[2]
    assert "skipped 3 bad rows (--on-bad-rows skip)" in captured.err
    assert [json.loads(ln)["case_id"] for ln in captured.out.splitlines()] == ["m1", "m2"]


def test_bom_headed_csv_and_utf16_with_bom_are_read(workspace: Path, capsys):
    from clinrag.core.cases import load_cases

    (workspace / "b.csv").write_bytes("\ufeffid,clinical_scenario,questions\nx,A man.,Why?\n".encode("utf-8"))
    (workspace / "u.jsonl").write_bytes(jl(MINI).encode("utf-16"))
    assert load_cases(workspace / "b.csv")[0].id == "x"
    assert load_cases(workspace / "u.jsonl")[0].id == "m1"


def test_an_index_rebuilt_into_its_own_folder_keeps_nothing_stale(workspace: Path, capsys):
    out = workspace / "index"  # the demo index (with BM25) the workspace holds: one build, not two
    assert (out / "bm25").is_dir()
    (out / "notes.txt").write_text("mine")
    assert main(["index", "build", str(workspace / "kb.jsonl"), "--out", str(out), "--no-bm25"]) == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert main(["index", "build", str(workspace / "kb.jsonl"), "--out", str(out), "--no-bm25"]) == 0
    assert json.loads((out / "manifest.json").read_text())["bm25"] is None and not (out / "bm25").exists()
