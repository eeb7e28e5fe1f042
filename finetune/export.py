"""Load a trained adapter onto its base, and merge it into a standalone model folder.

``clinrag export --base ID|DIR --adapter DIR --out DIR [--dtype auto|bf16|fp16|fp32]``: the base is resized to the
adapter's tokenizer exactly as training resized it (:func:`clinrag.core.models.embeddings.resize_to_tokenizer`, never
shrinking), the adapter is loaded (LoRA weights and any ``trainable_token_indices`` rows), merged in float32, cast to
``--dtype`` (``auto``: the base's own dtype) and saved with the tokenizer as safetensors. Plain ``transformers`` and
vLLM (which cannot serve trainable-token adapters) load the result. The tokenizer must extend the base's (every base
token keeps its id) — otherwise a clear error before any weights load.

The folder is written by transformers 5, whose config and tokenizer files transformers 4.x misreads
(:func:`portable_config`, :func:`portable_tokenizer_config`); the export adds the 4.x spellings next to the 5.x ones,
so both major versions (and the tools pinned to 4.x) load the same model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinrag.core.choices import Choice
from clinrag.core.errors import ModelLoadError


class ExportDtype(Choice):
    """dtype of the exported weights; ``auto`` keeps the base model's."""

    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


# transformers 5 keeps these inside ``rope_parameters``; 4.x reads them top-level, and a missing ``rope_theta`` is
# silently 10000 there (Qwen2.5 uses 1,000,000: positions would be wrong without any error).
V4_TOP_LEVEL_ROPE_KEYS = ("rope_theta", "partial_rotary_factor")


def portable_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config.json`` readable by transformers 4.x and 5.x: the 5.x fields kept, the 4.x ones added.

    Returns the config and notes on what could not be translated (per-layer-type RoPE, which 4.x spelt per model).
    """
    out, notes = dict(config), []
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and rope and all(isinstance(v, dict) for v in rope.values()):
        notes.append("rope_parameters per layer type (e.g. sliding/full attention) have no generic transformers 4.x "
                     "form; the exported config.json keeps only the 5.x one")
    elif isinstance(rope, dict):
        for key in V4_TOP_LEVEL_ROPE_KEYS:
            if key in rope:
                out[key] = rope[key]
        scaling = {k: v for k, v in rope.items() if k not in V4_TOP_LEVEL_ROPE_KEYS}
        if scaling.get("rope_type", "default") != "default":  # yarn, linear, dynamic, llama3, …: 4.x's rope_scaling
            out["rope_scaling"] = scaling
    if "dtype" in config and "torch_dtype" not in config:  # transformers < 4.56 reads only torch_dtype
        out["torch_dtype"] = config["dtype"]
    return out, notes


def portable_tokenizer_config(config: dict[str, Any]) -> dict[str, Any]:
    """``tokenizer_config.json`` loadable by transformers 4.x and 5.x.

    transformers 5 names its generic fast tokenizer ``TokenizersBackend`` (4.x: "does not exist"), and writes the
    additional special tokens as a list under ``extra_special_tokens``, which 4.x reads as a name → token mapping
    (``'list' object has no attribute 'keys'``). ``PreTrainedTokenizerFast`` and ``additional_special_tokens`` are
    what 4.x expects, and 5.x reads both (``PreTrainedTokenizerFast`` is its alias of the same backend).
    """
    out = dict(config)
    if out.get("tokenizer_class") == "TokenizersBackend":
        out["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = out.get("extra_special_tokens")
    if isinstance(extra, list):
        del out["extra_special_tokens"]
        out["additional_special_tokens"] = list(dict.fromkeys([*out.get("additional_special_tokens", []), *extra]))
    return out


def make_portable(folder: str | Path) -> list[str]:
    """Rewrite a saved model folder's ``config.json`` and ``tokenizer_config.json`` for transformers 4.x and 5.x."""
    folder, notes = Path(folder), []
    for name in ("config.json", "tokenizer_config.json"):
        path = folder / name
        if not path.exists():
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        if name == "config.json":
            config, notes = portable_config(config)
        else:
            config = portable_tokenizer_config(config)
        path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return notes


def read_adapter_config(adapter_dir: str | Path) -> dict[str, Any]:
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.exists():
        hint = (" (it holds a full model: load it directly)" if (Path(adapter_dir) / "config.json").exists() else "")
        raise ModelLoadError(f"{adapter_dir}: not an adapter folder, adapter_config.json is missing{hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: invalid JSON ({exc.msg})") from None


def load_adapter_model(base: str, adapter_dir: str | Path, *, dtype: Any = None) -> tuple[Any, Any]:
    """(PeftModel, tokenizer): the base resized to the adapter's tokenizer, with the adapter loaded (eval mode)."""
    from clinrag.core.models.loading import check_adapter, load_causal_lm

    read_adapter_config(adapter_dir)  # names a full-model folder passed as an adapter
    check_adapter(adapter_dir)  # a pickle-only adapter is refused before the (slow) base model loads
    return load_causal_lm(base, adapter=adapter_dir, device="cpu", dtype=dtype or "float32")


def base_dtype(base: str) -> Any:
    """The dtype the base model's config records (float32 for a GGUF file, or when it records none)."""
    import torch
    from clinrag.core.models.loading import resolve_source

    source = resolve_source(base)
    if source.kind == "gguf":
        return torch.float32
    from transformers import AutoConfig

    recorded = getattr(AutoConfig.from_pretrained(source.location), "dtype", None)
    if isinstance(recorded, str):
        recorded = getattr(torch, recorded, None)
    return recorded if isinstance(recorded, torch.dtype) else torch.float32


def export_merged(base: str, adapter_dir: str | Path, out: str | Path, *, dtype: str | ExportDtype = ExportDtype.AUTO,
                  log: Any = None) -> Path:
    """Merge the adapter into the base and save model + tokenizer to ``out`` (written to a temp folder, renamed)."""
    from clinrag.core.io import atomic_dir_write
    from clinrag.core.models.precision import resolve_dtype

    choice = ExportDtype.parse(dtype, option="--dtype")
    model, tok = load_adapter_model(base, adapter_dir)  # merged in float32, whatever the target
    merged = model.merge_and_unload()
    target = base_dtype(base) if choice is ExportDtype.AUTO else resolve_dtype(choice.value, "cpu")
    merged = merged.to(target)

    def write(tmp: Path) -> None:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        for note in make_portable(tmp):
            if log is not None:
                log(f"note: {note}")
        manifest = Path(adapter_dir) / "added_tokens_manifest.json"
        if manifest.exists():
            (tmp / manifest.name).write_text(manifest.read_text(encoding="utf-8"), encoding="utf-8")

    atomic_dir_write(Path(out), write, kind="export")
    return Path(out)
