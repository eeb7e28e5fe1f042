"""Load a trained adapter onto its base, and merge it into a standalone model folder.

``clinrag export --base ID|DIR --adapter DIR --out DIR``: the base is resized to the adapter's tokenizer exactly as
training resized it (:func:`clinrag.core.models.embeddings.resize_to_tokenizer`, never shrinking), the adapter is loaded
(LoRA weights and any ``trainable_token_indices`` rows), merged, and saved with the tokenizer as safetensors. Plain
``transformers`` and vLLM (which cannot serve trainable-token adapters) load the result. The tokenizer must extend the
base's (every base token keeps its id) — otherwise a clear error before any weights load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinrag.core.errors import ModelLoadError


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


def export_merged(base: str, adapter_dir: str | Path, out: str | Path) -> Path:
    """Merge the adapter into the base and save model + tokenizer to ``out`` (written to a temp folder, renamed)."""
    from clinrag.core.io import atomic_dir_write

    model, tok = load_adapter_model(base, adapter_dir)
    merged = model.merge_and_unload()

    def write(tmp: Path) -> None:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        manifest = Path(adapter_dir) / "added_tokens_manifest.json"
        if manifest.exists():
            (tmp / manifest.name).write_text(manifest.read_text(encoding="utf-8"), encoding="utf-8")

    atomic_dir_write(Path(out), write, kind="export")
    return Path(out)
