"""A checkpoint cut short while saving (no trainer_state.json, or half of one) is never resumed from."""

from __future__ import annotations

import json
from pathlib import Path

from clinrag.finetune.checkpoints import (
    INCOMPLETE_SENTINEL,
    drop_incomplete,
    last_complete_checkpoint,
)


def _ckpt(root: Path, step: int, state: str | None) -> Path:
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    if state is not None:
        (folder / "trainer_state.json").write_text(state)
    return folder


def test_last_complete_checkpoint_skips_cut_short_ones_and_drop_removes_only_those(tmp_path):
    whole = json.dumps({"global_step": 1})
    _ckpt(tmp_path, 2, whole)
    _ckpt(tmp_path, 10, whole)  # numeric order, not name order: 10 > 4
    _ckpt(tmp_path, 4, whole)
    _ckpt(tmp_path, 12, whole[:-3])  # killed while writing the state file
    _ckpt(tmp_path, 14, None)  # killed before it
    _ckpt(tmp_path, 16, whole).joinpath(INCOMPLETE_SENTINEL).write_text("in progress")
    _ckpt(tmp_path, 3, None)  # older than the last complete one: left alone
    assert last_complete_checkpoint(tmp_path) == (10, tmp_path / "checkpoint-10")
    notes: list[str] = []
    drop_incomplete(tmp_path, notes.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2", "checkpoint-3",
                                                          "checkpoint-4"]
    assert len(notes) == 3 and all("cut short while saving" in n for n in notes)
    assert last_complete_checkpoint(tmp_path / "absent") is None
