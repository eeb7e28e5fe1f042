"""Retrieval benchmark: index build vs bare encode, batched vs one-at-a-time search, ANN recall vs exact.

    python benchmarks/bench_retrieval.py [--n 2000] [--index DIR] [--cases 100] [--queries 1000]

1. **Build throughput.** The first ``--n`` passages of the shared corpus are embedded by a bare
   ``SentenceTransformer.encode`` (fp32, same texts, same batch size) and indexed by ``PassageIndex.build`` (fp32,
   with BM25) in the same run, alternating, best of ``--repeats``. ``build_vs_encode_ratio`` = bare time / build
   time (target >= 0.9). The same build at ``--precision auto`` (bf16 where the CPU has it) gives
   ``bf16_build_speedup`` and the cosine between bf16 and fp32 vectors.
2. **Batched search.** For ``--cases`` multi-question cases, all questions of a case in one ``retrieve`` call
   (one encode, one search) vs one call per question. ``batched_search_speedup`` = one-at-a-time / batched time.
3. **ANN vs exact.** Stored vectors of ``--index`` (a flat index folder, e.g. the full 29k corpus; default: the
   subset index from step 1), read back with ``reconstruct_n`` (no re-embedding). ``--queries`` case questions
   are searched exactly (ground truth) and with HNSW / IVF / IVF-PQ at several settings: recall@10 and speed-up.

Writes ``benchmarks/results/retrieval.json`` (each section records its command, machine and load average).
``--steps ann --index .cache/full-index`` re-runs one section into the existing file. Needs the shared data
(``../shared/data``, or ``CLINRAG_SHARED_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLINRAG_SHARED_DATA") or next(
    (p / "shared" / "data" for p in REPO.parents if (p / "shared" / "data" / "README.md").exists()),
    REPO.parent / "shared" / "data"))
CORPUS = SHARED / "corpus" / "medical_passages.jsonl"
MULTI_CASES = SHARED / "cases" / "medquad_multi_dev.jsonl"
PUBMED_CASES = SHARED / "cases" / "pubmedqa_dev.jsonl"
OUT = REPO / "benchmarks" / "results" / "retrieval.json"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def first_passages(n: int):
    from clinrag.retrieval.passages import iter_passages

    out = []
    for p, _ in iter_passages([CORPUS]):
        out.append(p)
        if len(out) >= n:
            break
    return out


def bench_build(n: int, repeats: int, batch_size: int) -> tuple[dict, object]:
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.store import PassageIndex, passage_input

    passages = first_passages(n)
    texts = [passage_input(p) for p in passages]
    fp32 = SentenceTransformerEmbedder(batch_size=batch_size, precision="fp32")
    auto = SentenceTransformerEmbedder(batch_size=batch_size, precision="auto")
    model = fp32.model  # the same SentenceTransformer object, loaded once
    model.encode(texts[:16], batch_size=batch_size)  # warm-up
    bare_s, build_s, auto_s = [], [], []
    index = auto_index = bare = None
    for _ in range(repeats):  # alternate, so drifting machine load hits both sides alike
        t, bare = timed(model.encode, texts, batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True)
        bare_s.append(t)
        t, index = timed(PassageIndex.build, passages, fp32)
        build_s.append(t)
        t, auto_index = timed(PassageIndex.build, passages, auto)
        auto_s.append(t)
    cos = np.sum(auto_index.vectors() * index.vectors(), axis=1)
    same = np.abs(np.sum(index.vectors() * np.asarray(bare), axis=1) - 1)
    result = {
        "passages": n, "batch_size": batch_size, "repeats": repeats,
        "bare_encode_seconds": bare_s, "build_fp32_seconds": build_s, "build_auto_seconds": auto_s,
        "auto_precision": auto.precision.value,
        "bare_encode_passages_per_s": n / min(bare_s), "build_fp32_passages_per_s": n / min(build_s),
        "build_auto_passages_per_s": n / min(auto_s),
        "build_vs_encode_ratio": min(bare_s) / min(build_s),
        "bf16_build_speedup": min(build_s) / min(auto_s),
        "bf16_vs_fp32_cosine_min": float(cos.min()), "bf16_vs_fp32_cosine_mean": float(cos.mean()),
        "build_vs_bare_vector_max_deviation": float(same.max()),
    }
    return result, auto_index


def bench_batched(index_dir: Path, n_cases: int, repeats: int) -> dict:
    from clinrag.core.cases import load_cases
    from clinrag.core.types import Query
    from clinrag.retrieval.retriever import IndexRetriever

    cases = load_cases(MULTI_CASES)[:n_cases]
    batches = [[Query(q) for q in c.questions] for c in cases]
    out: dict = {"cases": len(batches), "questions": sum(map(len, batches)), "k": 10}
    for mode in ("dense", "hybrid"):
        r = IndexRetriever(index_dir, mode=mode)
        r.retrieve(batches[0], 10)  # load index + model
        batched_s, single_s = [], []
        for rep in range(repeats):
            # Interleaved per case, alternating which goes first, so load drift on a shared machine hits both.
            tb = ts = 0.0
            for i, b in enumerate(batches):
                order = ("batched", "single") if (i + rep) % 2 == 0 else ("single", "batched")
                for which in order:
                    if which == "batched":
                        tb += timed(r.retrieve, b, 10)[0]
                    else:
                        ts += timed(lambda: [r.retrieve([q], 10) for q in b])[0]
            batched_s.append(tb)
            single_s.append(ts)
        out[mode] = {"batched_seconds": batched_s, "one_at_a_time_seconds": single_s,
                     "batched_ms_per_case": 1000 * min(batched_s) / len(batches),
                     "one_at_a_time_ms_per_case": 1000 * min(single_s) / len(batches),
                     "speedup": min(single_s) / min(batched_s)}
    out["batched_search_speedup"] = out["dense"]["speedup"]
    return out


def _search_time(index, q, k: int, repeats: int) -> tuple[float, np.ndarray]:
    best, ids = float("inf"), None
    for _ in range(repeats):
        t, (_, ids) = timed(index.search, q, k)
        best = min(best, t)
    return best, ids


def bench_ann(index_dir: Path, n_queries: int, repeats: int) -> dict:
    import faiss
    from clinrag.core.cases import load_cases
    from clinrag.core.types import Query
    from clinrag.retrieval.ann import AnnSpec, build_faiss
    from clinrag.retrieval.retriever import IndexRetriever

    r = IndexRetriever(index_dir)
    vecs = r.index.vectors()
    questions = [q for path in (MULTI_CASES, PUBMED_CASES) for c in load_cases(path) for q in c.questions]
    rng = np.random.default_rng(0)
    picked = [questions[i] for i in sorted(rng.choice(len(questions), min(n_queries, len(questions)), replace=False))]
    q = r.embed([Query(t) for t in picked])
    k = 10
    flat = faiss.IndexFlatIP(vecs.shape[1])
    flat.add(vecs)
    flat_s, truth = _search_time(flat, q, k, repeats)
    out: dict = {"index": str(index_dir), "vectors": int(len(vecs)), "queries": int(len(q)), "k": k,
                 "faiss_threads": faiss.omp_get_max_threads(), "exact_search_seconds": flat_s, "configs": []}
    n = len(vecs)
    nlist = AnnSpec.of("ivf").resolve(n, vecs.shape[1]).nlist
    configs = [("hnsw", {"M": 32, "ef_construction": 200}, "ef_search", [32, 64, 128, 256]),
               ("ivf", {"nlist": nlist}, "nprobe", [4, 16, 64]),
               ("ivfpq", {"nlist": nlist, "pq_m": 48, "pq_bits": 8}, "nprobe", [16, 64])]
    for kind, params, knob, values in configs:
        spec = AnnSpec.of(kind, **params).resolve(n, vecs.shape[1])
        try:
            build_s, index = timed(build_faiss, vecs, spec)
        except Exception as exc:  # e.g. too few vectors to train PQ codebooks on a small subset
            out["configs"].append({"type": kind, **spec.params(), "skipped": str(exc).splitlines()[0]})
            continue
        for v in values:
            if kind == "hnsw":
                index.hnsw.efSearch = v  # ef_search in the row below overrides the spec's default
            else:
                index.nprobe = v
            t, ids = _search_time(index, q, k, repeats)
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, truth)]))
            out["configs"].append({"type": kind, **spec.params(), knob: v, "build_seconds": build_s,
                                   "search_seconds": t, "recall@10_vs_exact": recall, "speedup_vs_exact": flat_s / t})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="passages for the build-throughput comparison")
    ap.add_argument("--repeats", type=int, default=2, help="timing repeats (best is reported)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--index", type=Path, default=None, help="flat index folder for the ANN and batched-search "
                    "comparisons (default: the subset index built in step 1)")
    ap.add_argument("--cases", type=int, default=100, help="multi-question cases for batched search")
    ap.add_argument("--queries", type=int, default=1000, help="questions for the ANN recall comparison")
    ap.add_argument("--steps", default="build,batched,ann", help="comma-separated subset of build,batched,ann; "
                    "a partial run updates those sections of an existing --out file")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    steps = set(args.steps.split(","))
    if not steps <= {"build", "batched", "ann"}:
        ap.error(f"--steps: unknown {sorted(steps - {'build', 'batched', 'ann'})} (valid: build, batched, ann)")
    if not CORPUS.exists():
        print(f"shared data not found at {SHARED} (set CLINRAG_SHARED_DATA)", file=sys.stderr)
        return 1
    import torch

    partial = steps != {"build", "batched", "ann"} and args.out.exists()
    result: dict = json.loads(args.out.read_text(encoding="utf-8")) if partial else {"benchmark": "retrieval"}
    machine = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "platform": platform.platform(), "load_avg_start": os.getloadavg()}
    command = "python benchmarks/bench_retrieval.py " + " ".join(argv if argv is not None else sys.argv[1:])
    subset = None
    if "build" in steps:
        print(f"[build] build vs bare encode on {args.n} passages …", flush=True)
        result["build"], subset = bench_build(args.n, args.repeats, args.batch_size)
        result["build"].update(command=command, machine=machine)
        print(json.dumps({k: v for k, v in result["build"].items() if not isinstance(v, (list, dict))}, indent=1),
              flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.index is None and subset is None and steps & {"batched", "ann"}:
            from clinrag.retrieval.embedder import SentenceTransformerEmbedder
            from clinrag.retrieval.store import PassageIndex

            subset = PassageIndex.build(first_passages(args.n), SentenceTransformerEmbedder())
        index_dir = args.index or (subset.save(Path(tmp) / "subset-index") if subset is not None else None)
        if "batched" in steps:
            print(f"[batched] batched vs one-at-a-time search on {index_dir} …", flush=True)
            result["batched_search"] = bench_batched(index_dir, args.cases, args.repeats)
            result["batched_search"].update(command=command, machine=machine)
        if "ann" in steps:
            print(f"[ann] ANN vs exact on {index_dir} …", flush=True)
            result["ann"] = bench_ann(index_dir, args.queries, max(args.repeats, 3))
            result["ann"].update(command=command, machine=machine)
    if "build" in result:
        result["build_vs_encode_ratio"] = result["build"]["build_vs_encode_ratio"]
        result["bf16_build_speedup"] = result["build"]["bf16_build_speedup"]
    if "batched_search" in result:
        result["batched_search_speedup"] = result["batched_search"]["batched_search_speedup"]
    if "ann" in result:  # headline: the default query-time settings of each ANN type
        for c in result["ann"]["configs"]:
            if (c["type"], c.get("ef_search"), c.get("nprobe")) in (("hnsw", 128, None), ("ivf", None, 16)):
                result[f"{c['type']}_recall_at_10"] = c["recall@10_vs_exact"]
                result[f"{c['type']}_speedup_vs_exact"] = c["speedup_vs_exact"]
    machine["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}: " + ", ".join(f"{k}={result[k]:.3f}" for k in
                                           ("build_vs_encode_ratio", "batched_search_speedup", "bf16_build_speedup")
                                           if k in result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
