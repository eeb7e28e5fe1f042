"""Render ``benchmarks/results/*.json`` into the table in ``benchmarks/README.md``.

Each benchmark's headline figures (top-level numbers and booleans) are listed with the target the project set
for them; nested raw timings stay in the JSON. Run by ``benchmarks/run_all.py`` after the benchmarks, or alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

#: headline key → (target text, check) — a check returns True when the target is met.
#: Keys of the ``real_size`` object are prefixed ``real_size.`` (nested figures: ``real_size.a.b``).
TARGETS = {
    "real_size.speedup_vs_sequential": ("≥ 3", lambda v: v >= 3),
    "real_size.ratio_vs_llamacpp": ("≥ 0.7", lambda v: v >= 0.7),
    "real_size.load_seconds": ("≤ 5", lambda v: v <= 5),
    "real_size.peak_rss_mb": ("< 2500", lambda v: v < 2500),
    "real_size.quality_parity.share_first_32_tokens_equal": ("≥ 0.9", lambda v: v >= 0.9),
    "build_vs_encode_ratio": ("≥ 0.9", lambda v: v >= 0.9),
    "batched_search_speedup": ("> 1", lambda v: v > 1),
    "speedup_vs_sequential": ("≥ 2", lambda v: v >= 2),
    "overhead_share": ("< 0.03", lambda v: v < 0.03),
    "tokens_equal": ("true", lambda v: v is True),
    "tokens_per_s_ratio_vs_padded": ("≥ 1.5", lambda v: v >= 1.5),
}


def _fmt(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _headline(data: dict, prefix: str = "", depth: int = 0) -> list[tuple[str, object]]:
    """Numbers and booleans of ``data`` (and, under ``real_size``, of its small nested objects), in order."""
    out: list[tuple[str, object]] = []
    for key, value in data.items():
        if isinstance(value, (int, float, bool)) or (value is None and prefix):
            out.append((prefix + key, value))
        elif isinstance(value, dict) and prefix and depth < 3:
            out += _headline(value, f"{prefix}{key}.", depth + 1)
    return out


def table() -> str:
    rows = ["| benchmark | figure | value | target | met |", "|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        # the real-size figures (the 0.5B model a user runs) before the small-model ones
        figures = _headline(data.get("real_size") or {}, "real_size.") + _headline(data)
        for key, value in figures:
            target, check = TARGETS.get(key, ("", None))
            met = "" if check is None or value is None else ("yes" if check(value) else "**no**")
            rows.append(f"| {path.stem} | `{key}` | {_fmt(value)} | {target} | {met} |")
    return "\n".join(rows)


def main() -> None:
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} lacks the {BEGIN} … {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    tmp = README.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, README)


if __name__ == "__main__":
    main()
