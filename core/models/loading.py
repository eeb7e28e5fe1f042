"""Loading a causal LM and its tokenizer from a hub id, a local folder or a ``.gguf`` file (+ optional PEFT adapter).

Every failure a user can fix (missing path, hub id not cached while offline, adapter folder without
``adapter_config.json``) becomes one :class:`~clinrag.core.errors.ModelLoadError` line instead of a stack trace.

Design notes:

* The tokenizer is always left-padded: batched generation appends new tokens on the right, so prompts
  must end at the same column.
* A PEFT adapter trained with an extended vocabulary ships its own tokenizer; the base embeddings are grown
  to that tokenizer's length *before* the adapter is attached (never shrunk: Qwen2.5-0.5B has 151,936 rows for
  151,665 ids, see :func:`clinrag.core.models.embeddings.resize_to_tokenizer`).
* A ``.gguf`` file is converted once into a cached safetensors folder (:mod:`clinrag.core.models.gguf`) and
  loaded from there, so only the first command pays for de-quantisation.
* ``trust_remote_code`` is off unless the caller asks for it, and weights load from safetensors only
  (``allow_pickle=True`` opts in to ``pytorch_model.bin``: unpickling a file can run code).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinrag.core.defaults import DEFAULT_MODEL
from clinrag.core.errors import ModelLoadError

from .precision import dtype_name, is_bf16_weights, resolve_dtype

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


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    return str(device)


def materialize(source: ModelSource) -> ModelSource:
    """A ``gguf`` source as its converted folder (converting it the first time); other sources unchanged."""
    if source.kind != "gguf" or not source.gguf_file:
        return source
    from .gguf import ensure_converted

    return ModelSource("folder", str(ensure_converted(Path(source.location) / source.gguf_file)))


def load_tokenizer(source: ModelSource | str | os.PathLike[str], *, trust_remote_code: bool = False,
                   prepare: bool = True) -> Any:
    """The source's tokenizer, prepared for batched generation unless ``prepare=False`` (then exactly as saved).
    ``"qwen2.5"`` names the exact offline Qwen2.5 tokenizer; a ``.gguf`` uses its converted folder when there is
    one, else reads the file's own tokenizer."""
    from transformers import AutoTokenizer

    finish = prepare_tokenizer if prepare else (lambda t: t)
    if not isinstance(source, ModelSource):
        if str(source).strip().lower() in ("qwen2.5", "qwen2.5-instruct"):
            from .qwen_tokenizer import load_qwen25_tokenizer

            return finish(load_qwen25_tokenizer("instruct"))
        source = resolve_source(source)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if source.gguf_file:
        from .gguf import converted_dir, file_sha256, is_converted

        folder = converted_dir(file_sha256(Path(source.location) / source.gguf_file))
        if is_converted(folder):
            source = ModelSource("folder", str(folder))
        else:
            kwargs["gguf_file"] = source.gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise _load_error(source, exc) from exc
    return finish(tok)


def prepare_tokenizer(tok: Any) -> Any:
    """Left padding, a pad token (EOS when the model has none) and a chat template (ChatML fallback)."""
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    return tok


def load_model(source: ModelSource | str | os.PathLike[str], *, device: str = "cpu", dtype: Any = None,
               trust_remote_code: bool = False, allow_pickle: bool = False, eval_mode: bool = True,
               quantization_config: Any = None, attn_implementation: str | None = None,
               **from_pretrained: Any) -> Any:
    """A causal LM on ``device`` (in eval mode unless ``eval_mode=False``). With a ``quantization_config`` (e.g.
    bitsandbytes 4-bit for QLoRA) the weights are quantised while loading, straight onto ``device`` (a quantised
    model cannot be moved afterwards); other keyword arguments go to ``from_pretrained``. A folder holding only
    ``pytorch_model.bin`` is refused unless ``allow_pickle``."""
    from transformers import AutoModelForCausalLM

    source = materialize(source if isinstance(source, ModelSource) else resolve_source(source))
    if source.kind == "folder" and not allow_pickle:
        folder = Path(source.location)
        if not any(folder.glob("*.safetensors")) and any(folder.glob("*.bin")):
            raise ModelLoadError(f"model folder {source.location!r} has only pickle weights (*.bin); clinrag loads "
                                 f"safetensors only, because unpickling a file can run code. Convert it, or "
                                 f"opt in with allow_pickle=True if you trust its origin")
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "dtype": resolve_dtype(dtype, device),
                              "use_safetensors": None if allow_pickle else True, **from_pretrained}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs.update(quantization_config=quantization_config, device_map={"": device})
    try:
        model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise _load_error(source, exc) from exc
    if "device_map" not in kwargs:
        model.to(device)
    if eval_mode:
        model.eval()
    return model


def check_adapter(adapter: str | os.PathLike[str]) -> Path:
    folder = Path(adapter).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"adapter folder {str(adapter)!r} does not exist")
    if not (folder / "adapter_config.json").is_file():
        raise ModelLoadError(f"adapter folder {str(adapter)!r} has no adapter_config.json (not a PEFT adapter)")
    if not (folder / "adapter_model.safetensors").is_file() and (folder / "adapter_model.bin").is_file():
        raise ModelLoadError(f"adapter folder {str(adapter)!r} holds only adapter_model.bin (a pickle, never loaded); "
                             f"save the adapter as safetensors (PEFT's default: save_pretrained(..., "
                             f"safe_serialization=True))")
    return folder


def _linear_dims(config: dict[str, Any]) -> set[int]:
    """Every in/out width a linear layer of this decoder can have (attention, KV, MLP)."""
    hidden = config.get("hidden_size")
    heads = config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (hidden // heads if hidden and heads else None)
    kv = config.get("num_key_value_heads") or heads
    dims = {hidden, config.get("intermediate_size")}
    if head_dim:
        dims |= {heads * head_dim if heads else None, kv * head_dim if kv else None}
    return {d for d in dims if isinstance(d, int)}


def _adapter_widths(folder: Path) -> set[int]:
    """In/out widths of the adapter's LoRA matrices, read from the safetensors header (no tensor is loaded)."""
    path = folder / "adapter_model.safetensors"
    if not path.is_file():
        return set()
    from safetensors import safe_open

    widths: set[int] = set()
    with safe_open(str(path), framework="np") as fh:
        for key in fh.keys():
            shape = fh.get_slice(key).get_shape()
            if key.endswith("lora_A.weight") and len(shape) == 2:
                widths.add(int(shape[1]))
            elif key.endswith("lora_B.weight") and len(shape) == 2:
                widths.add(int(shape[0]))
    return widths


def check_adapter_fits(adapter: str | os.PathLike[str], base_config: dict[str, Any] | None, base_tokenizer: Any,
                       base_label: str) -> None:
    """Refuse, in one line and before anything large loads, an adapter trained on another base model (its LoRA
    widths are not the base's) or on another tokenizer (its saved tokenizer does not extend the base's)."""
    folder = check_adapter(adapter)
    widths, dims = (_adapter_widths(folder), _linear_dims(base_config)) if base_config is not None else (set(), set())
    if widths and dims and not widths <= dims:
        raise ModelLoadError(f"adapter {str(adapter)!r} was trained on another base model: its layers are "
                             f"{sorted(widths)} wide, {base_label!r} has {sorted(dims)} (hidden size "
                             f"{base_config.get('hidden_size')})")
    if base_tokenizer is not None and any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")):
        from transformers import AutoTokenizer

        from .manifest import check_tokenizer_extends

        try:
            adapter_tok = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"adapter folder {str(adapter)!r}: cannot load its tokenizer: {exc}") from exc
        check_tokenizer_extends(base_tokenizer, adapter_tok, what=f"tokenizer of adapter {str(adapter)!r}")
    _warn_if_prompts_changed(folder)


_WARNED: set[str] = set()


def _warn_if_prompts_changed(folder: Path) -> None:
    """An adapter records the hash of the prompt templates it was trained on; warn once when the running code's
    templates differ (the model then sees prompts it was not trained on)."""
    import json
    import warnings

    from clinrag.core.prompts import templates_hash

    from .manifest import TRAINING_RECORD

    record = folder / TRAINING_RECORD
    if not record.is_file() or str(folder) in _WARNED:
        return
    try:
        trained = json.loads(record.read_text(encoding="utf-8")).get("prompt_templates_hash")
    except (OSError, ValueError, AttributeError):
        return
    if trained and trained != templates_hash():
        _WARNED.add(str(folder))
        warnings.warn(f"adapter {folder} was trained on prompt templates {trained}, but this clinrag sends "
                      f"{templates_hash()}: its answers may be worse than when it was evaluated", stacklevel=3)


def base_config(source: ModelSource) -> dict[str, Any]:
    """The base model's config as a dict, read without loading weights (a GGUF: from its header)."""
    import json

    if source.kind == "folder":
        try:
            return json.loads((Path(source.location) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {source.location}/config.json: {exc}") from exc
    if source.kind == "gguf" and source.gguf_file:
        from .gguf import read_info

        info = read_info(Path(source.location) / source.gguf_file)
        return {"hidden_size": info.hidden_size}
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source.location).to_dict()
    except (OSError, ValueError) as exc:
        raise _load_error(source, exc) from exc


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
                   device: str | None = None, dtype: Any = None, trust_remote_code: bool = False,
                   merge_adapter: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` ready for left-padded batched greedy generation. ``dtype="bfloat16-weights"`` loads
    the bfloat16 copy and converts it to weight-only bfloat16 (:func:`~clinrag.core.models.weight_only.to_bf16_weights`;
    an adapter is merged into the weights first). ``merge_adapter`` (inference) folds the adapter into the weights
    in any dtype, unless the base is quantised (merging into 4-bit weights would round them again); without it the
    model is the PEFT model (export, tests that inspect the adapter)."""
    weight_only = is_bf16_weights(dtype)
    if weight_only:
        dtype = "bfloat16"
    source = resolve_source(spec)
    if adapter:
        check_adapter(adapter)  # fail before the (slow) model load
    dev = resolve_device(device)
    if adapter:  # another base or tokenizer: one line now, not a shape error after minutes of loading
        check_adapter_fits(adapter, base_config(source), None, source.label)
    source = materialize(source)
    if source.kind == "folder":  # a float32 folder asked for in bfloat16: map a cached copy, do not convert again
        from . import dtype_copy

        wanted = dtype_name(resolve_dtype(dtype, dev))
        if dtype_copy.wants_copy(Path(source.location), wanted):
            source = ModelSource("folder", str(dtype_copy.ensure_copy(source.location, wanted)))
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    if adapter:
        check_adapter_fits(adapter, None, tokenizer, source.label)  # widths were checked above
    model = load_model(source, device=dev, dtype=dtype, trust_remote_code=trust_remote_code)
    if adapter:
        model, tokenizer = attach_adapter(model, tokenizer, adapter)
        if weight_only or (merge_adapter and not getattr(model, "is_quantized", False)):
            # The LoRA products folded into the weights. Unmerged, every linear layer adds two small products and
            # PEFT's wrapper to each forward: on the 0.5B stand-in in float32 the tuned arm of the real-model
            # evaluation took 2.6x the base's seconds per case for 1.2x its tokens.
            model = model.merge_and_unload()
    if weight_only:
        from .weight_only import to_bf16_weights

        model = to_bf16_weights(model)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer

