"""Loading a causal LM and its tokenizer from a hub id, a local folder or a ``.gguf`` file (+ optional PEFT adapter).

Every failure a user can fix (missing path, hub id not cached while offline, adapter folder without
``adapter_config.json``) becomes one :class:`~clinrag.core.errors.ModelLoadError` line instead of a stack trace.

Design notes:

* The tokenizer is always left-padded: batched generation appends new tokens on the right, so prompts
  must end at the same column.
* A PEFT adapter trained with an extended vocabulary ships its own tokenizer; the base embeddings are grown
  to that tokenizer's length *before* the adapter is attached (never shrunk: Qwen2.5-0.5B has 151,936 rows for
  151,665 ids, see :func:`clinrag.core.models.embeddings.resize_to_tokenizer`).
* ``trust_remote_code`` is off unless the caller asks for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinrag.core.errors import ModelLoadError

DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

# Used only when a tokenizer ships no chat template (some GGUF conversions): plain ChatML.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is ``gguf`` (a file), ``folder`` or ``hub`` (an id)."""

    kind: str
    location: str  # folder holding the files, or the hub id
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return str(Path(self.location) / self.gguf_file) if self.gguf_file else self.location


def resolve_source(spec: str | os.PathLike[str]) -> ModelSource:
    """Classify ``spec`` without loading anything; a path that should exist but does not is an error here."""
    text = str(spec).strip()
    if not text:
        raise ModelLoadError("--model is empty: give a hub id, a local folder or a .gguf file")
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"model file {text!r} does not exist")
        return ModelSource("gguf", str(path.resolve().parent), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return ModelSource("gguf", str(path.resolve()), ggufs[0].name)
            raise ModelLoadError(f"model folder {text!r} has no config.json (not a transformers model folder)")
        return ModelSource("folder", str(path.resolve()))
    if path.exists():
        raise ModelLoadError(f"model path {text!r} is neither a folder nor a .gguf file")
    if text.startswith(("/", "./", "../", "~", ".\\")) or text.count("/") > 1 or os.sep in text and os.sep != "/":
        raise ModelLoadError(f"model folder {text!r} does not exist")
    return ModelSource("hub", text)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _load_error(source: ModelSource, exc: BaseException) -> ModelLoadError:
    if source.kind == "hub":
        why = ("the Hugging Face hub is switched off (HF_HUB_OFFLINE=1)" if _offline()
               else "the Hugging Face hub could not be reached or has no such model")
        return ModelLoadError(
            f"cannot load model {source.location!r}: it is not a local folder or .gguf file, it is not in the local "
            f"Hugging Face cache, and {why}. Download it once (`hf download {source.location}`) or pass "
            f"--model with a local folder or .gguf path")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelLoadError(f"cannot load model {source.label!r}: {first}")


def resolve_dtype(dtype: Any, device: str) -> Any:
    """``None``/"auto" → float32 on CPU (fast and exact there), bfloat16 on GPUs that support it."""
    import torch

    if dtype is None or dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    valid = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
             "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if str(dtype) not in valid:
        raise ModelLoadError(f"dtype {dtype!r} is not one of: auto, {', '.join(valid)}")
    return valid[str(dtype)]


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    return str(device)


def load_tokenizer(source: ModelSource, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise _load_error(source, exc) from exc
    return prepare_tokenizer(tok)


def prepare_tokenizer(tok: Any) -> Any:
    """Left padding, a pad token (EOS when the model has none) and a chat template (ChatML fallback)."""
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    return tok


def load_model(source: ModelSource, *, device: str = "cpu", dtype: Any = None, trust_remote_code: bool = False,
               quantization_config: Any = None, attn_implementation: str | None = None) -> Any:
    """The model on ``device`` in eval mode. With a ``quantization_config`` (e.g. bitsandbytes 4-bit for QLoRA) the
    weights are quantised while loading, straight onto ``device`` (a quantised model cannot be moved afterwards)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "dtype": resolve_dtype(dtype, device)}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs.update(quantization_config=quantization_config, device_map={"": device})
    try:
        model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise _load_error(source, exc) from exc
    if source.gguf_file:
        _forget_gguf_quantizer(model)
    if quantization_config is None:
        model.to(device)
    model.eval()
    return model


def _forget_gguf_quantizer(model: Any) -> None:
    """A GGUF de-quantised on load is a plain dense model, but transformers still marks it as quantized
    (which blocks ``save_pretrained`` and PEFT). Drop the marker when no packed GGUF layers remain."""
    if not any("gguf" in type(m).__name__.lower() for m in model.modules()):
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config


def check_adapter(adapter: str | os.PathLike[str]) -> Path:
    folder = Path(adapter).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"adapter folder {str(adapter)!r} does not exist")
    if not (folder / "adapter_config.json").is_file():
        raise ModelLoadError(f"adapter folder {str(adapter)!r} has no adapter_config.json (not a PEFT adapter)")
    return folder


def attach_adapter(model: Any, tokenizer: Any, adapter: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Attach a PEFT adapter folder; if it carries a tokenizer, use it and grow the embeddings to it first."""
    folder = check_adapter(adapter)
    from clinrag.core.models.embeddings import resize_to_tokenizer
    from peft import PeftModel

    if any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        from transformers import AutoTokenizer

        try:
            tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(str(folder)))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"adapter folder {str(adapter)!r}: cannot load its tokenizer: {exc}") from exc
    resize_to_tokenizer(model, tokenizer)
    try:
        model = PeftModel.from_pretrained(model, str(folder))
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot attach adapter {str(adapter)!r}: {first}") from exc
    model.eval()
    return model, tokenizer


def load_causal_lm(spec: str | os.PathLike[str] = DEFAULT_MODEL, *, adapter: str | os.PathLike[str] | None = None,
                   device: str | None = None, dtype: Any = None, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` ready for left-padded batched greedy generation."""
    source = resolve_source(spec)
    if adapter:
        check_adapter(adapter)  # fail before the (slow) model load
    dev = resolve_device(device)
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    model = load_model(source, device=dev, dtype=dtype, trust_remote_code=trust_remote_code)
    if adapter:
        model, tokenizer = attach_adapter(model, tokenizer, adapter)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def gguf_to_folder(gguf: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """De-quantise a ``.gguf`` into a transformers folder (safetensors + tokenizer), written atomically.

    Loading the folder afterwards takes about a second instead of the GGUF's tokenizer conversion and
    de-quantisation (~20 s for SmolLM2-135M).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_causal_lm(gguf, device="cpu")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
