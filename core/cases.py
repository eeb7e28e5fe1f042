"""The case schema and its loaders (JSONL, JSON, CSV, HF ``datasets``).

A *case* is one clinical scenario with several questions. Reference fields (``answers``, ``evidence``,
``options``, ``answer_key``, ``answer_tolerance``) are per-question lists aligned with ``questions``; the
schema is the one documented in ``../shared/data/README.md``. ``questions`` and ``answers`` may also be a
single numbered string ("1. … 2. …", "1) …", "Q1: …"), split here into a list.

Every loader validates every row and raises :class:`~clinrag.core.errors.CaseError` naming file, line (or row)
and field; no row is ever dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from .badrows import BadRows, handle_bad_row
from .errors import CaseError
from .io import read_text, text_lines

PER_QUESTION_FIELDS = ("answers", "evidence", "options", "answer_key", "answer_tolerance")

# A marker is "1." / "1)" / "Q1:" / "Q1." at the start or after whitespace, followed by whitespace.
# "2.5 mg" has no space after the dot, so decimals are not mistaken for markers.
_MARKER = re.compile(r"(?:(?<=\s)|^)(?:Q\s*)?(\d{1,2})\s*[.):]\s+", re.IGNORECASE)


def split_numbered(text: str) -> list[str]:
    """Split "1. a 2. b" (or "1) a", "Q1: a") into ``["a", "b"]``.

    Markers must run 1, 2, 3, … in order; a number out of sequence is part of the text (so "see 3. above"
    inside question 1 does not start a question). Text without a leading "1" marker is one question.
    """
    text = text.strip()
    if not text:
        return []
    starts: list[tuple[int, int]] = []  # (marker start, text start)
    expected = 1
    for m in _MARKER.finditer(text):
        if int(m.group(1)) == expected:
            if expected == 1 and text[: m.start()].strip():
                break  # text before "1." means this is not a numbered list
            starts.append((m.start(), m.end()))
            expected += 1
    if not starts:
        return [text]
    parts = []
    for i, (_, begin) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        part = text[begin:end].strip()
        if part:
            parts.append(part)
    return parts


class Case(BaseModel):
    """One clinical case: a scenario, its questions and (for training/evaluation) reference fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    id: str
    context: str = ""
    clinical_scenario: str
    questions: list[str]
    summary: str | None = None
    answers: list[str] | None = None
    evidence: list[list[str]] | None = None
    options: list[dict[str, str] | None] | None = None
    answer_key: list[str | None] | None = None
    answer_tolerance: list[tuple[float, float] | None] | None = None
    language: str = "en"
    meta: dict[str, Any] = {}

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("clinical_scenario")
    @classmethod
    def _scenario(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("context", "summary", mode="before")
    @classmethod
    def _none_to_empty(cls, v: Any, info: Any) -> Any:
        if v is None and info.field_name == "context":
            return ""
        return v

    @field_validator("questions", "answers", mode="before")
    @classmethod
    def _split(cls, v: Any, info: Any) -> Any:
        if isinstance(v, str):
            return split_numbered(v)
        if info.field_name == "questions" and isinstance(v, list):
            for i, q in enumerate(v):
                if isinstance(q, str) and not q.strip():
                    raise ValueError(f"question {i + 1} is empty")
        return v

    @field_validator("questions")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one question is required")
        return v

    @field_validator("answer_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, v: Any) -> Any:
        if isinstance(v, list):
            out = []
            for item in v:
                if isinstance(item, (list, tuple)) and len(item) == 2:
                    lo, hi = (float(x) for x in item)
                    if not (math.isfinite(lo) and math.isfinite(hi)):
                        raise ValueError(f"bounds must be finite numbers (got {item[0]!r}, {item[1]!r})")
                    if lo > hi:
                        raise ValueError(f"low bound {lo} is above high bound {hi}")
                    out.append((lo, hi))
                else:
                    out.append(item)
            return out
        return v

    @model_validator(mode="after")
    def _aligned(self) -> Case:
        n = len(self.questions)
        for name in PER_QUESTION_FIELDS:
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name}: has {len(value)} items but there are {n} questions; "
                                 f"per-question lists must align with 'questions'")
        if self.options is not None and self.answer_key is not None:
            for i, (opts, key) in enumerate(zip(self.options, self.answer_key)):
                if opts is not None and key is not None and key not in opts:
                    raise ValueError(f"answer_key: question {i + 1} key {key!r} is not one of the options "
                                     f"{sorted(opts)}")
        return self

    # -- convenience -------------------------------------------------------------------------------
    @property
    def n_questions(self) -> int:
        return len(self.questions)

    def reference(self, field: str, index: int) -> Any:
        """The per-question reference value for question ``index`` (0-based), or None."""
        value = getattr(self, field)
        return None if value is None else value[index]


# -- loading -------------------------------------------------------------------------------------------

def _field_of(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ()) if p != "__root__"]
    return ".".join(loc)


def parse_case(raw: Any, *, source: str | None = None, line: int | None = None, kind: str = "line") -> Case:
    """Validate one raw mapping into a :class:`Case`, translating errors to file/line/field."""
    if not isinstance(raw, dict):
        raise CaseError(f"expected a JSON object, got {type(raw).__name__}", source=source, line=line, kind=kind)
    try:
        return Case.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field_of(err)
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if not field and ":" in msg:  # model-level checks name their field first
            field, msg = (s.strip() for s in msg.split(":", 1))
        if err.get("type") == "missing":
            msg = "required field is missing"
        elif err.get("type") == "extra_forbidden":
            msg = (f"unknown field (valid: {', '.join(Case.model_fields)})")
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more error{'s' if more > 1 else ''})"
        raise CaseError(msg, source=source, line=line, field=field or None, kind=kind) from None


def _check_unique(cases: Sequence[Case], positions: Sequence[int], source: str, kind: str) -> None:
    seen: dict[str, int] = {}
    for case, pos in zip(cases, positions):
        if case.id in seen:
            raise CaseError(f"duplicate id {case.id!r} (first seen at {kind} {seen[case.id]})",
                            source=source, line=pos, field="id", kind=kind)
        seen[case.id] = pos


def _csv_value(name: str, value: str) -> Any:
    """CSV cells are strings; list/dict fields may hold JSON, questions/answers may hold "1. … 2. …"."""
    if value is None:
        return None
    value = value.strip()
    if name in ("questions", "answers"):
        if value.startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"invalid JSON list: {exc.msg}") from None
        return value
    if name in ("evidence", "options", "answer_key", "answer_tolerance", "meta"):
        if not value:
            return None if name != "meta" else {}
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON: {exc.msg}") from None
    if name == "summary" and not value:
        return None
    return value


def load_cases(source: str | Path | Any, *, fmt: str | None = None, bad_rows: BadRows | None = None) -> list[Case]:
    """Load and validate cases from a ``.jsonl``/``.json``/``.csv`` path or a HF ``datasets.Dataset``.

    ``fmt`` overrides the format otherwise taken from the file suffix. ``bad_rows`` (``--on-bad-rows``) decides
    what one invalid row does: raise (default) or be skipped and reported; a duplicate id skips the later row.
    """
    if not isinstance(source, (str, Path)):
        return load_dataset_rows(source)
    path = Path(source)
    if not path.exists():
        raise CaseError("file not found", source=str(path))
    if path.is_dir():
        raise CaseError("is a folder; expected a case file (.jsonl, .json or .csv)", source=str(path))
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    kind = {"json": "item", "csv": "row"}.get(fmt, "line")
    cases: list[Case] = []
    positions: list[int] = []
    seen: dict[str, int] = {}
    for pos, parse in _rows(path, fmt):
        try:
            case = parse()
            if case.id in seen:
                raise CaseError(f"duplicate id {case.id!r} (first seen at {kind} {seen[case.id]})",
                                source=str(path), line=pos, field="id", kind=kind)
        except CaseError as exc:
            if exc.line is None:  # the file itself is unreadable: no row to skip
                raise
            handle_bad_row(bad_rows, exc)
            continue
        seen[case.id] = pos
        cases.append(case)
        positions.append(pos)
    if not cases:
        raise CaseError("no cases found" + (" (every row was skipped)" if bad_rows and bad_rows.skipped else ""),
                        source=str(path))
    return cases


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, Callable[[], Case]]]:
    """(position, parse) per row: parsing is deferred so a bad row's error can be skipped by the caller."""
    source = str(path)
    if fmt == "jsonl":
        for lineno, text in enumerate(text_lines(path), start=1):
            if text.strip():
                yield lineno, lambda text=text, lineno=lineno: parse_case(_json_line(text, source, lineno),
                                                                          source=source, line=lineno)
    elif fmt == "json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise CaseError(f"invalid JSON: {exc.msg} (column {exc.colno}, line {exc.lineno})", source=source) from None
        except RecursionError:
            raise CaseError("JSON nested too deeply", source=source) from None
        for i, raw in enumerate(data if isinstance(data, list) else [data], start=1):
            yield i, lambda raw=raw, i=i: parse_case(raw, source=source, line=i, kind="item")
    elif fmt == "csv":
        with io.StringIO(read_text(path), newline="") as fh:  # a BOM-headed CSV: the BOM is not in the header
            for i, row in enumerate(csv.DictReader(fh), start=1):
                yield i, lambda row=row, i=i: parse_case(_csv_row(row, source, i), source=source, line=i, kind="row")
    else:
        raise CaseError(f"unknown case file format {fmt!r} (valid: jsonl, json, csv)", source=source)


def _json_line(text: str, source: str, lineno: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaseError(f"invalid JSON: {exc.msg} (column {exc.colno})", source=source, line=lineno) from None
    except RecursionError:
        raise CaseError("JSON nested too deeply", source=source, line=lineno) from None


def _csv_row(row: dict[str | None, Any], source: str, i: int) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name, value in row.items():
        if name is None:
            raise CaseError("more cells than header columns", source=source, line=i, kind="row")
        try:
            converted = _csv_value(name, value)
        except ValueError as exc:
            raise CaseError(str(exc), source=source, line=i, field=name, kind="row") from None
        if converted is not None:
            raw[name] = converted
    return raw


def load_dataset_rows(dataset: Iterable[dict[str, Any]], *, name: str = "<dataset>") -> list[Case]:
    """Validate the rows of a HF ``datasets.Dataset`` (or any iterable of mappings).

    Arrow fills absent optional fields with None, so None-valued keys are treated as absent.
    """
    cases, positions = [], []
    for i, row in enumerate(dataset):
        raw = {k: v for k, v in dict(row).items() if v is not None}
        cases.append(parse_case(raw, source=name, line=i, kind="row"))
        positions.append(i)
    if not cases:
        raise CaseError("no cases found", source=name)
    _check_unique(cases, positions, name, "row")
    return cases


def select_case(cases: Sequence[Case], case_id: str | None) -> list[Case]:
    """All cases, or the one whose id is ``case_id`` (error lists a few valid ids)."""
    if case_id is None:
        return list(cases)
    for case in cases:
        if case.id == case_id:
            return [case]
    sample = ", ".join(c.id for c in cases[:5])
    raise CaseError(f"no case with id {case_id!r} (e.g. {sample}{', …' if len(cases) > 5 else ''})")
