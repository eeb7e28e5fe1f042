"""The real-size run's orchestration and its ``real_size`` object (see :mod:`real_size` for the sides).

``measure(args)`` measures copy bandwidth, runs every side in its own process (``prepare`` first, so the timed
sides load the way a second command does), and :func:`summarise` turns their raw results into the figures
``benchmarks/results/answer.json`` reports under ``real_size``.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from real_size import GGUF, PARITY_TOKENS, REPO, copy_bandwidth_gbs, run_side


def _first(ids: list[int], n: int = PARITY_TOKENS) -> list[int]:
    return list(ids[:n])


def summarise(sides: dict, bandwidth: float, threads: int, loads: list[float], args) -> dict:
    """The ``real_size`` object of answer.json from the sides' raw results."""
    cl, ex, base, ll, par = (sides.get(k, {}) for k in ("clinrag", "exact", "baseline", "llamacpp", "parity"))
    if "error" in cl or not cl.get("cases"):
        raise SystemExit(f"real-size side 'clinrag' failed: {cl.get('error')}")
    secs = {name: [c["seconds"] for c in side["cases"]] for name, side in
            (("clinrag", cl), ("exact", ex), ("baseline", base), ("llamacpp", ll)) if side.get("cases")}
    # float32 through the same batched decoder (the exact side) is the reference where it ran: against the sequential
    # pipeline, rows at a near-tie also fork on summation order alone (stand-in: the exact path kept 1 of 4 rows).
    ref = ex if ex.get("cases") else base
    rows = [(c["ids"], b["ids"]) for c, b in zip(cl["cases"], ref.get("cases", []))]
    compared = [(_first(d) == _first(f)) for ci, bi in rows for d, f in zip(ci, bi)] + _parity_rows(par, "default")
    exact_equal = [x == y for ce, be in zip(ex.get("cases", []), base.get("cases", []))
                   for x, y in zip(ce["ids"], be["ids"])]
    limit = cl["cases"][0]["max_new_tokens"]
    n_rows = [len(c["ids"]) for c in cl["cases"]]
    out = {
        "model": f"Qwen2.5-Coder-0.5B-Instruct stand-in ({GGUF.name}), clinrag: {cl.get('dtype')} from the "
                 f"conversion cache",
        "dtype": cl.get("dtype"), "dtype_is_default": cl.get("dtype") == _default_dtype(),
        "torch_threads": threads, "cpu_count": os.cpu_count(),
        "load_average_1m": {"before": loads[0], "after": loads[1]},
        "cases": len(cl["cases"]), "case_ids": [c["case_id"] for c in cl["cases"]],
        "questions": sum(c["questions"] for c in cl["cases"]),
        "rows_per_case": n_rows, "passages_per_question": args.k, "max_new_tokens": limit,
        "stopped_at_eos": f"{sum(t < limit for c in cl['cases'] for t in c['completion_tokens'])}/{sum(n_rows)}",
        "case_seconds": secs,
        "case_seconds_median": round(statistics.median(secs["clinrag"]), 2),
        "case_seconds_median_by_side": {k: round(statistics.median(v), 2) for k, v in secs.items()},
        "speedup_vs_sequential": (round(sum(secs["baseline"]) / sum(secs["clinrag"]), 2)
                                  if "baseline" in secs else None),
        "speedup_vs_sequential_exact_path": (round(sum(secs["baseline"]) / sum(secs["exact"]), 2)
                                             if "exact" in secs and "baseline" in secs else None),
        "ratio_vs_llamacpp": (round(sum(secs["llamacpp"]) / sum(secs["clinrag"]), 3) if "llamacpp" in secs else None),
        "decode_tokens_per_s": {"clinrag": cl.get("decode"), "llamacpp": ll.get("decode")},
        "copy_bandwidth_gb_s": round(bandwidth, 1),
        "bandwidth_limit_tokens_per_s": {
            "clinrag": round(bandwidth * 1e9 / cl["weight_bytes_per_step"], 1),
            "llamacpp": round(bandwidth * 1e9 / ll["weight_bytes_per_step"], 1) if ll.get("weight_bytes_per_step")
            else None,
            "how": "batch-1 decode reads every weight but the input embedding once per step: copy bandwidth ÷ "
                   "those bytes (clinrag: its dtype; llama.cpp: the GGUF's quantised tensors)"},
        "load_seconds": cl.get("load_seconds"), "load_seconds_llamacpp": ll.get("load_seconds"),
        "peak_rss_mb": cl.get("peak_rss_mb"),
        "peak_rss_mb_by_side": {k: v.get("peak_rss_mb") for k, v in
                                (("clinrag", cl), ("exact", ex), ("baseline", base), ("llamacpp", ll))},
        # the decode-rate probe after the cases runs every row of the largest case to the full token count
        "peak_rss_mb_after_rate_probe": {k: v.get("peak_rss_mb_after_rate_probe") for k, v in
                                         (("clinrag", cl), ("exact", ex), ("llamacpp", ll))},
        "quality_parity": _parity(cl, par, compared, exact_equal, "the exact side (float32, same batched decoder)"
                              if ref is ex else "the float32 pipeline baseline"),
    }
    if "llamacpp" not in secs:
        out["llamacpp_error"] = ll.get("error", "not run")
    for name in ("exact", "baseline", "parity"):
        if name in getattr(args, "sides", ()) and not sides.get(name, {}).get("cases"):
            out[f"{name}_error"] = sides.get(name, {}).get("error", "not run")
    return out


def _parity_rows(par: dict, name: str) -> list[bool]:
    """Per parity-case row: are ``name``'s first 32 tokens float32's?"""
    return [_first(d) == _first(f) for case in par.get("cases", []) if name in case
            for d, f in zip(case[name], case["float32"])]


#: The issue's gate for a lower-precision default: first 32 greedy tokens equal to float32's on ≥ 90 % of ≥ 30 rows.
PARITY_TARGET, PARITY_MIN_ROWS = 0.9, 30
#: Sides that run a no-EOS decode-rate probe after their timed cases (and so report two peaks).
RATE_PROBE_SIDES = ("clinrag", "exact", "llamacpp")


def _parity(cl: dict, par: dict, compared: list[bool], exact_equal: list[bool], reference: str) -> dict:
    share = round(sum(compared) / len(compared), 4) if compared else None
    others = {}
    for name, label in par.get("dtypes", {}).items():
        if name in ("default", "float32"):
            continue
        eq = _parity_rows(par, name)
        others[label] = {"rows_equal": f"{sum(eq)}/{len(eq)}", "share": round(sum(eq) / len(eq), 4) if eq else None}
    return {
        "share_first_32_tokens_equal": share,
        "rows_equal": f"{sum(compared)}/{len(compared)}",
        "meets_target": bool(share is not None and share >= PARITY_TARGET and len(compared) >= PARITY_MIN_ROWS),
        "target": f"first {PARITY_TOKENS} greedy tokens equal to float32's on >= {PARITY_TARGET:.0%} of >= "
                  f"{PARITY_MIN_ROWS} rows",
        "compares": f"{cl.get('dtype')} (the clinrag side) vs float32, greedy, first {PARITY_TOKENS} tokens of every "
                    f"answer and summary: the timed cases' rows against {reference}, plus "
                    f"{len(par.get('cases', []))} more cases decoded both ways (batched, 32-token answers)",
        "other_dtypes_on_parity_cases": others,
        "exact_path_tokens_equal": f"{sum(exact_equal)}/{len(exact_equal)}" if exact_equal else None,
        "held_out_metrics": held_out_gate()}


#: Where ``experiments/real_model/run.py evaluate-bf16`` ships its per-set comparisons (``dtype_parity.py``).
HELD_OUT_PARITY = REPO / "docs" / "eval-results" / "real-model-v1" / "eval-bf16w"


def held_out_gate(folder: Path = HELD_OUT_PARITY) -> dict | None:
    """The gate's other arm, as the real-model runner measured it: per held-out set and arm, whether every metric of
    the lower-precision run lies within float32's 95 % interval (None when no comparison has been shipped)."""
    sets = {}
    for path in sorted(folder.glob("*/parity.json")):
        arms = json.loads(path.read_text(encoding="utf-8"))["arms"]
        sets[path.parent.name] = {
            arm: {"cases": block["cases"],
                  "within_reference_ci": {m: v["within_reference_ci"] for m, v in block["metrics"].items()}}
            for arm, block in arms.items()}
    if not sets:
        return None
    return {"sets": sets, "meets_target": all(ok for arms in sets.values() for block in arms.values()
                                              for ok in block["within_reference_ci"].values()),
            "target": "every held-out metric of the lower-precision run within float32's 95 % case-bootstrap CI",
            "source": str(folder.relative_to(REPO))}


def _default_dtype() -> str:
    from clinrag.core.models.precision import dtype_name, resolve_inference_dtype

    return dtype_name(resolve_inference_dtype(None, "cpu"))


def measure(args) -> dict:
    """Run the sides named in ``args.sides`` (each in its own process) and summarise. ``args``: cases,
    parity_cases, index, shared, sides and :func:`real_size.add_run_options`'s."""
    import tempfile

    import torch

    threads = args.threads or torch.get_num_threads()
    before = os.getloadavg()[0]
    bandwidth = copy_bandwidth_gbs(threads)
    sides = {}
    raw = getattr(args, "raw_dir", None)  # kept between runs: a side already measured there is not run again
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(raw or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for side in ("prepare", "clinrag", "llamacpp", "exact", "baseline", "parity"):
            if side not in args.sides or (side == "parity" and not args.parity_cases):
                continue
            if raw and (folder / f"{side}.json").is_file():
                kept = json.loads((folder / f"{side}.json").read_text(encoding="utf-8"))
                if side in RATE_PROBE_SIDES and "error" not in kept and "peak_rss_mb_after_rate_probe" not in kept:
                    # written before the peak was read right after the cases: its peak_rss_mb includes the probe
                    print(f"== real size: {side} (the kept result predates the after-the-cases peak: rerun)", flush=True)
                else:
                    sides[side] = kept
                    print(f"== real size: {side} (kept from {folder})", flush=True)
                    continue
            print(f"== real size: {side}", flush=True)
            sides[side] = run_side(side, args, folder)
            if "error" in sides[side]:
                print(f"   {side} failed: {sides[side]['error']}", flush=True)
    result = summarise(sides, bandwidth, threads, [round(before, 2), round(os.getloadavg()[0], 2)], args)
    result["per_case"] = [{"case_id": c["case_id"], "questions": c["questions"], "rows": c["rows"],
                           "completion_tokens": c["completion_tokens"], "shared_prefix_tokens": c["shared_prefix_tokens"],
                           "prompt_tokens": c["prompt_tokens"], "prefill_seconds": c["prefill_seconds"],
                           "decode_seconds": c["decode_seconds"], "summary": c["summary"], "answers": c["answers"]}
                          for c in sides["clinrag"]["cases"]]
    return result
