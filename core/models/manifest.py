"""The vocabulary manifest: which token ids ``clinrag vocab extend`` added, written beside the model or adapter.

Fine-tuning reads it to train the new embedding rows; loading an adapter checks its tokenizer against the base's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinrag.core.errors import ClinragError, ModelLoadError

MANIFEST_NAME = "added_tokens_manifest.json"
#: Written by fine-tuning beside the adapter: base model, data, and the hash of the prompt templates trained on.
TRAINING_RECORD = "clinrag_training.json"


class ManifestError(ClinragError, ValueError):
    """A vocabulary manifest is missing, malformed or does not match its tokenizer."""


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read a manifest file (or the one inside a model folder); ``added_ids`` must be a list of token ids."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.exists():
        raise ManifestError(f"vocabulary manifest not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{p}: invalid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: cannot read ({exc})") from None
    ids = data.get("added_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ManifestError(f"{p}: field 'added_ids' must be a list of token ids")
    return data


def manifest_tokens(manifest: dict[str, Any]) -> dict[str, int]:
    """token content → id from the manifest's ``added`` entries (``clinrag vocab extend`` format)."""
    out = {}
    for item in manifest.get("added", []) or []:
        if isinstance(item, dict) and isinstance(item.get("id"), int) and (item.get("token") or item.get("form")):
            out[str(item.get("token") or item.get("form"))] = int(item["id"])
    return out


def check_manifest_against_tokenizer(manifest: dict[str, Any], tokenizer: Any, source: str) -> list[int]:
    """The manifest's new ids must exist in the tokenizer and its added tokens must have the same ids there."""
    ids = sorted(int(i) for i in manifest["added_ids"])
    n = len(tokenizer)
    bad = [i for i in ids if i >= n]
    if bad:
        raise ManifestError(f"{source}: added ids {bad[:5]} are beyond the tokenizer's {n} ids: the tokenizer does "
                            f"not match this manifest (use the tokenizer saved by `clinrag vocab extend`)")
    for token, tid in manifest_tokens(manifest).items():
        got = tokenizer.convert_tokens_to_ids(token)
        if got != tid:
            raise ManifestError(f"{source}: token {token!r} is id {tid} in the manifest but {got} in the tokenizer")
    return ids


def check_tokenizer_extends(base_tok: Any, tok: Any, *, what: str = "adapter tokenizer") -> None:
    """``tok`` must keep every (token, id) of ``base_tok`` (it may add tokens after them)."""
    base_vocab = base_tok.get_vocab()
    vocab = tok.get_vocab()
    mismatched = [(t, i) for t, i in base_vocab.items() if vocab.get(t) != i]
    if mismatched:
        t, i = mismatched[0]
        raise ModelLoadError(f"the {what} does not match the base model's tokenizer: {len(mismatched)} base tokens "
                             f"differ (e.g. {t!r} is id {i} in the base, {vocab.get(t)} in the {what})")
