"""Kill tests: SIGINT and SIGKILL during ``index build`` and ``evaluate`` (real subprocesses on the demo data), then a
rerun that completes with results equal to an uninterrupted run. SIGINT must exit 130 with one ``interrupted`` line
saying what was completed; nothing may look finished that is not."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clinrag.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO_KB = REPO / "examples" / "demo" / "knowledge_base.jsonl"
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

pytestmark = pytest.mark.slow


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "clinrag.cli", *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"finished before it could be interrupted: {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("the process never reached the point to interrupt")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _build_args(out: Path, *, interruptible: bool = False) -> list[str]:
    # Batches of one for the run to interrupt: its embedding loop lasts long enough to be interrupted inside it even
    # on a fast machine. The clean builds use the default batches (8x less CPU: a batch-1 build of the demo corpus
    # took 39 s of CPU, the default 5 s); the comparison is between clean builds, so it is unaffected.
    return ["index", "build", str(DEMO_KB), "--out", str(out), *(["--batch-size", "1"] if interruptible else [])]


def _embedding_started(err_path: Path):
    return lambda: "embedding" in err_path.read_text(errors="replace") if err_path.exists() else False


@pytest.fixture(scope="module")
def reference_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "idx"
    assert main(_build_args(out)) == 0
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["sigint", "sigterm", "sigkill"])
def test_index_build_interrupted_leaves_nothing_and_a_rerun_equals_a_clean_build(tmp_path, reference_index, sig):
    out = tmp_path / "idx"
    log = tmp_path / "stderr.txt"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "clinrag.cli", *_build_args(out, interruptible=True)],
                                cwd=tmp_path, env=ENV,
                                text=True, stdout=subprocess.DEVNULL, stderr=fh)
        _wait_for(_embedding_started(log), proc)
        time.sleep(0.05)  # inside the embedding loop
        proc.send_signal(sig)
        proc.wait(timeout=120)
    err = log.read_text(errors="replace")
    assert not out.exists()  # an index is written whole or not at all
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
        assert "Traceback" not in err
        lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
        assert len(lines) == 1 and "was not written" in lines[0] and "rerun" in lines[0]
    assert main(_build_args(out)) == 0
    got, want = (json.loads((p / "manifest.json").read_text()) for p in (out, reference_index))
    assert got["checksum"] == want["checksum"] and got["files"] == want["files"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".idx.")]  # no temp folder left behind


def _eval_args(index: Path, out: Path) -> list[str]:
    return ["evaluate", str(DEMO_CASES), "--index", str(index), "--strategies", "none,decomposition",
            "--generator", "extractive", "--out", str(out), "--bootstrap-resamples", "100"]


def _comparable(out: Path) -> tuple[list, dict]:
    rows = [json.loads(ln) for ln in (out / "per_question.jsonl").read_text().splitlines()]
    for r in rows:
        r["case"].pop("seconds", None)
    rows.sort(key=lambda r: (r["arm"], r["case_id"], r["question_index"]))
    metrics = json.loads((out / "metrics.json").read_text())
    for block in metrics["arms"].values():
        block.pop("cost", None)
    return rows, metrics


@pytest.fixture(scope="module")
def uninterrupted(demo_index_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "clean"
    assert main(_eval_args(demo_index_dir, out)) == 0
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_evaluate_interrupted_then_resumed_equals_an_uninterrupted_run(demo_index_dir, uninterrupted, tmp_path, sig):
    out = tmp_path / "ev"
    records = out / "per_question.jsonl"
    proc = _start(_eval_args(demo_index_dir, out), tmp_path)
    _wait_for(lambda: records.exists() and records.stat().st_size > 0, proc)
    code, err = _stop(proc, sig)
    assert not (out / "metrics.json").exists()  # an interrupted run never looks finished
    if sig == signal.SIGINT:
        assert code == 130 and "Traceback" not in err, err
        line = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
        assert len(line) == 1 and "arm×case results are saved" in line[0] and "rerun the same command" in line[0]
    else:
        assert code == -signal.SIGKILL
        # a kill can cut the last case short: simulate the worst case, half a line
        data = records.read_bytes()
        records.write_bytes(data[: len(data) - 40])
    assert main(_eval_args(demo_index_dir, out)) == 0
    assert _comparable(out) == _comparable(uninterrupted)


def _finetune_args(model: Path, data: Path, out: Path) -> list[str]:
    # a checkpoint every 2 of 8 short steps: the signal lands during training, after a complete checkpoint
    return ["finetune", "--model", str(model), "--data", str(data), "--mode", "lora", "--max-steps", "8",
            "--out", str(out), "--peft.r", "2", "--train.batch_size", "2", "--train.max_length", "64",
            "--train.save_steps", "2", "--data.eval_fraction", "0", "--train.logging_steps", "1",
            "--train.early_stopping_patience", "0", "--data.summaries", "false"]


def test_finetune_sigterm_keeps_checkpoints_says_how_to_resume_and_resume_completes(tiny_qwen2_dir, tmp_path):
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps({"id": f"c{i}", "clinical_scenario": f"Man {40 + i} with chest pain.",
                                        "questions": ["What rises?", "Dose?"],
                                        "answers": [f"troponin rises [{i}]", f"{i + 1} mg"]}) + "\n"
                            for i in range(6)))
    out = tmp_path / "ft"
    proc = _start(_finetune_args(tiny_qwen2_dir, data, out), tmp_path)
    first = out / "checkpoints" / "checkpoint-2" / "trainer_state.json"  # written last: the checkpoint is whole
    _wait_for(first.exists, proc, timeout=300)
    code, err = _stop(proc, signal.SIGTERM)
    assert code == 143 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(lines) == 1, err
    line = lines[0]
    found = re.search(r"last complete checkpoint is \S*checkpoint-(\d+) \(step (\d+)\)", line)
    assert line.startswith("interrupted (SIGTERM): training stopped after step ") and found, line
    assert found.group(1) == found.group(2) and "rerun the same command with --resume" in line
    # nothing looks finished: no metrics, no final adapter; the folder stays clinrag's own (its marker)
    assert not (out / "metrics.json").exists() and not (out / "adapter_model.safetensors").exists()
    assert (out / ".clinrag-output.json").exists()
    assert main([*_finetune_args(tiny_qwen2_dir, data, out), "--resume", "true"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 8 and metrics["resumed_from"].endswith(f"checkpoint-{found.group(1)}")
    assert (out / "adapter_model.safetensors").exists()


def test_a_signal_whose_exception_python_dropped_in_a_finalizer_is_delivered_again():
    """Python drops an exception raised in ``__del__`` or a weakref callback; a signal handled there must still stop
    the command (it did not: a SIGTERM during model loading let ``finetune`` train to the end and exit 0)."""
    from clinrag.cli import interrupts

    class RaisesInFinalizer:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # the handler's KeyboardInterrupt is raised here, and dropped

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupts.handling():
        RaisesInFinalizer()  # collected at once
        assert interrupts.pending()
        time.sleep(5)  # the signal delivered again interrupts this
    assert time.monotonic() - started < 4 and interrupts.exit_code() == 143
