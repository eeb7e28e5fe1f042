"""The records of an evaluation run (``per_question.jsonl``) and when a stored one may be reused on resume.

Each row carries ``input_key`` — a hash of the case row, the arm, the run settings and the index's manifest — and
``rows_in_case``. A stored (arm, case) result is reused only if all its rows are there, in order, with no error,
and its key equals the key of the current inputs; otherwise it is recomputed, and :class:`Resume` says why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clinrag.core.cases import Case

log = logging.getLogger("clinrag.evaluation")

# Why a stored result is not reused (the run reports the counts).
INCOMPLETE, CHANGED, INPUTS, FAILED, OLD = ("incomplete (cut short)", "case changed", "index or settings changed",
                                           "failed before", "written by an older clinrag")


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def inputs_fingerprint(config: dict[str, Any], index_manifest: dict[str, Any] | None) -> str:
    """The run settings plus what the index holds (its manifest: passage checksum, every file's sha256)."""
    return _sha(config, index_manifest)


def case_hash(case: Case) -> str:
    return _sha(case.model_dump(mode="json"))


def input_key(case_digest: str, arm: Any, inputs: str) -> str:
    """The inputs of one (arm, case) result: ``CASE:REST``, so a mismatch can say whether the case changed."""
    return f"{case_digest[:16]}:{_sha(asdict(arm), inputs)[:16]}"


def load_records(path: Path) -> list[dict[str, Any]]:
    """Every parseable row; a line cut by a crash mid-write is skipped (its case then counts as incomplete)."""
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                log.warning("%s: line %d is incomplete; its case will be rerun", path, lineno)
                continue
            if isinstance(row, dict) and isinstance(row.get("arm"), str) and isinstance(row.get("case_id"), str):
                out.append(row)
            else:
                log.warning("%s: line %d is not a record; its case will be rerun", path, lineno)
    return out


@dataclass
class Resume:
    """Which stored results are reused (``kept`` rows, ``done`` pairs) and why others are recomputed."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    done: set[tuple[str, str]] = field(default_factory=set)
    recomputed: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        """``"3 (2 incomplete (cut short), 1 case changed)"``, or ``""`` when nothing is recomputed."""
        if not self.recomputed:
            return ""
        parts = ", ".join(f"{n} {why}" for why, n in self.recomputed.most_common())
        return f"{sum(self.recomputed.values())} ({parts})"


def _complete(rows: list[dict[str, Any]]) -> bool:
    n = rows[0].get("rows_in_case")
    return (isinstance(n, int) and len(rows) == n and [r.get("question_index") for r in rows] == list(range(1, n + 1))
            and len({r.get("input_key") for r in rows}) == 1)


def plan_resume(records: Sequence[dict[str, Any]], keys: dict[tuple[str, str], str]) -> Resume:
    """Sort stored rows into reusable results and results to recompute. ``keys`` maps each (arm, case id) of this
    run to its current input key; stored results of other cases are kept (when complete) for later runs."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in records:
        groups.setdefault((row["arm"], row["case_id"]), []).append(row)
    resume = Resume()
    for pair, rows in groups.items():
        rows = sorted(rows, key=lambda r: r.get("question_index") if isinstance(r.get("question_index"), int) else 0)
        current = keys.get(pair)
        if "input_key" not in rows[0]:
            why = OLD
        elif not _complete(rows):
            why = INCOMPLETE
        elif current is not None and rows[0]["input_key"] != current:
            why = CHANGED if _case_part(rows[0]["input_key"]) != _case_part(current) else INPUTS
        elif any(r.get("error") for r in rows):
            why = FAILED
        else:
            resume.kept.extend(rows)
            if current is not None:
                resume.done.add(pair)
            continue
        if current is not None:
            resume.recomputed[why] += 1
    return resume


def _case_part(key: Any) -> str:
    return str(key).split(":", 1)[0]
