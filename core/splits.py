"""Fixed train / held-out splits of case files, by case id, committed so every experiment reuses the same ones.

A split file is JSON::

    {"name": "...", "seed": 0, "sets": {
        "medquad_multi_dev": {"file": "cases/medquad_multi_dev.jsonl", "group_by": "meta.focus",
                              "parts": {"train": [ids…], "heldout": [ids…]}},
        "casimedicos": {"parts": {"train": {"file": "sft/casimedicos_en_train.jsonl"},
                                  "heldout": {"file": "sft/casimedicos_en_dev.jsonl"}}}}}

A part is a list of case ids drawn from the set's ``file``, or ``{"file": …}`` for a whole file (a split given by
the data itself). Files are relative to the shared data folder. Grouping (``group_by``) keeps every case of one
group (e.g. one condition) on the same side, so held-out cases share no condition with training cases.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cases import Case, load_cases
from .errors import ClinragError


class SplitError(ClinragError, ValueError):
    """A split file is malformed, names an unknown set or part, or lists ids its case file lacks."""


def group_key(case: Case, group_by: str | None) -> str:
    """The value of ``group_by`` (``id``, ``meta.KEY`` or a case field) for ``case``, lower-cased."""
    if not group_by or group_by == "id":
        return case.id
    if group_by.startswith("meta."):
        value = case.meta.get(group_by[5:])
    else:
        value = getattr(case, group_by, None)
    return str(value if value is not None else case.id).strip().lower()


def split_ids(cases: Sequence[Case], *, heldout: int, seed: int, group_by: str | None = None) -> dict[str, list[str]]:
    """``{"train": ids, "heldout": ids}`` with about ``heldout`` cases held out, whole groups at a time."""
    groups: dict[str, list[str]] = {}
    for case in cases:
        groups.setdefault(group_key(case, group_by), []).append(case.id)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    held: list[str] = []
    for key in order:
        if len(held) >= heldout:
            break
        held.extend(groups[key])
    held_set = set(held)
    return {"train": [c.id for c in cases if c.id not in held_set], "heldout": [c.id for c in cases if c.id in held_set]}


def read_split(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SplitError(f"{p}: split file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SplitError(f"{p}: not a readable JSON split file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise SplitError(f"{p}: field 'sets' must be an object of named case sets")
    return data


def split_cases(path: str | Path, set_name: str, part: str, data_root: str | Path) -> list[Case]:
    """The cases of one part of one set, loaded from ``data_root`` (in the case file's order)."""
    split = read_split(path)
    sets = split["sets"]
    if set_name not in sets:
        raise SplitError(f"{path}: no set {set_name!r} (valid: {', '.join(sorted(sets))})")
    entry = sets[set_name]
    parts = entry.get("parts", {}) if isinstance(entry, dict) else {}
    if part not in parts:
        raise SplitError(f"{path}: set {set_name!r} has no part {part!r} (valid: {', '.join(sorted(parts))})")
    chosen = parts[part]
    root = Path(data_root)
    if isinstance(chosen, dict):
        return load_cases(root / str(chosen.get("file", "")))
    if not isinstance(chosen, list) or "file" not in entry:
        raise SplitError(f"{path}: set {set_name!r}, part {part!r}: expected a list of ids and the set's 'file'")
    cases = load_cases(root / entry["file"])
    by_id = {c.id: c for c in cases}
    missing = [i for i in chosen if i not in by_id]
    if missing:
        raise SplitError(f"{path}: set {set_name!r}, part {part!r}: {len(missing)} ids are not in {entry['file']} "
                         f"(e.g. {missing[0]!r})")
    wanted = set(chosen)
    return [c for c in cases if c.id in wanted]
