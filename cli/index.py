"""``clinrag index …``: build, extend, inspect, search and evaluate passage indexes.

Heavy libraries (torch, faiss, bm25s) are imported inside the commands, never at module import.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from clinrag.core import defaults
from clinrag.retrieval.options import IndexType, Precision, RetrievalMode

from .options import BAD_ROWS_HELP, parse_filters, report_line

index_app = typer.Typer(no_args_is_help=True, help="Build and inspect passage indexes.")


def _sources(corpus: list[str]) -> list[str | Path]:
    return [c if c.startswith("hf:") else Path(c) for c in corpus]


def _model_name(name: str) -> str:
    """A local model folder by its absolute path, so the index finds it again from any working directory."""
    return str(Path(name).resolve()) if Path(name).is_dir() else name


@index_app.command("build")
def build(
    corpus: list[str] = typer.Argument(..., help="Passages: .jsonl ({id, title, text, ...}), .txt, .md, folders, "
                                                 "saved HF dataset folders, or hf:NAME[:SPLIT]."),
    out: Path = typer.Option(..., "--out", help="Index folder to write: absent, empty or an earlier index "
                             "(replaced whole, atomically); never a folder of yours."),
    embedder: str = typer.Option(defaults.DEFAULT_EMBEDDER, "--embedder",
                                 help="sentence-transformers model name or folder (e.g. from `index tune-embedder`)."),
    index: str = typer.Option(IndexType.flat.value, "--index", help="FAISS index: flat (exact), hnsw, ivf, ivfpq, "
                                    "or auto (exact below 1M passages)."),
    bm25: bool = typer.Option(True, "--bm25/--no-bm25", help="Also build BM25 (needed for bm25/hybrid search)."),
    chunk_tokens: int = typer.Option(0, "--chunk-tokens", min=0, help="Split documents longer than N embedder "
                                     "tokens into windows (0: no chunking)."),
    overlap: int = typer.Option(0, "--overlap", min=0, help="Tokens shared by neighbouring windows."),
    precision: str = typer.Option(Precision.auto.value, "--precision", help="Encoding precision: auto (bf16 "
                                  "where the CPU/GPU runs it natively, else fp32), fp32 or bf16."),
    batch_size: int = typer.Option(defaults.EMBED_BATCH_SIZE, "--batch-size", min=1, help="Passages per encode batch."),
    device: str = typer.Option(defaults.EMBED_DEVICE, "--device", help="Torch device for the embedder (cpu, cuda)."),
    query_prefix: str = typer.Option("", "--query-prefix", help="Prepended to queries (e5: 'query: ')."),
    passage_prefix: str = typer.Option("", "--passage-prefix", help="Prepended to passages (e5: 'passage: ')."),
    hnsw_m: int = typer.Option(None, "--hnsw-m", min=2, help="HNSW graph degree M (default 32)."),
    ef_search: int = typer.Option(None, "--ef-search", min=1, help="HNSW efSearch (default 128)."),
    nlist: int = typer.Option(None, "--nlist", min=1, help="IVF cells (default 4·√n)."),
    nprobe: int = typer.Option(None, "--nprobe", min=1, help="IVF cells probed per query (default 16)."),
    on_bad_rows: str = typer.Option("error", "--on-bad-rows", help=BAD_ROWS_HELP),
) -> None:
    """Chunk, embed and index passages; saves FAISS + BM25 + passages + manifest in one folder."""
    from clinrag.core.badrows import BadRows
    from clinrag.core.io import check_dir_write
    from clinrag.retrieval.ann import AnnSpec
    from clinrag.retrieval.chunking import ChunkSpec
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import MANIFEST, OUTPUT_KIND, PassageIndex

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{out} was not written (an index is written whole, at the end); rerun the same command")
    # a bad --out fails now, as PassageIndex.save would, not after the corpus is read and embedded
    check_dir_write(out, OUTPUT_KIND, legacy=(MANIFEST,))
    index_type = IndexType.parse(index, option="--index")
    precision_setting = Precision.parse(precision, option="--precision")
    spec = AnnSpec.of(index_type.value, M=hnsw_m, ef_search=ef_search, nlist=nlist, nprobe=nprobe)
    chunking = ChunkSpec(chunk_tokens, overlap)
    bad_rows = BadRows.of(on_bad_rows, report=report_line)
    passages = load_passages(_sources(corpus), bad_rows)
    embedder = _model_name(embedder)
    emb = SentenceTransformerEmbedder(embedder, device=device, batch_size=batch_size, query_prefix=query_prefix,
                                      passage_prefix=passage_prefix, precision=precision_setting)
    typer.echo(f"embedding {len(passages)} documents with {embedder} ({emb.precision.value}) …", err=True)
    built = PassageIndex.build(passages, emb, index=spec, bm25=bm25, chunking=chunking, show_progress=True)
    built.save(out)
    typer.echo(f"wrote {out} ({len(built)} passages, dim {built.dimension}, {built.ann.type.value}"
               f"{', bm25' if bm25 else ''})", err=True)
    if bad_rows.summary():
        report_line(bad_rows.summary())


@index_app.command("add")
def add(
    folder: Path = typer.Argument(..., help="Existing index folder."),
    corpus: list[str] = typer.Argument(..., help="New passages (same formats as `index build`)."),
    batch_size: int = typer.Option(defaults.EMBED_BATCH_SIZE, "--batch-size", min=1),
    device: str = typer.Option(defaults.EMBED_DEVICE, "--device"),
) -> None:
    """Add new passages without re-embedding the old ones (BM25 is rebuilt: seconds)."""
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import PassageIndex

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{folder} is unchanged (it is rewritten whole, at the end); rerun the same command")
    idx = PassageIndex.load(folder)
    cfg = idx.embedder_config
    emb = SentenceTransformerEmbedder(cfg["name"], device=device, batch_size=batch_size,
                                      query_prefix=cfg.get("query_prefix", ""),
                                      passage_prefix=cfg.get("passage_prefix", ""))
    n = idx.add(load_passages(_sources(corpus)), emb, show_progress=True)
    idx.save(folder)
    typer.echo(f"added {n} passages to {folder} (now {len(idx)})", err=True)


@index_app.command("info")
def info(folder: Path = typer.Argument(..., help="Index folder.")) -> None:
    """Print an index's manifest (after checking the folder against it)."""
    from clinrag.retrieval.store import PassageIndex

    typer.echo(json.dumps(PassageIndex.load(folder).manifest, indent=2))


@index_app.command("search")
def search(
    folder: Path = typer.Argument(..., help="Index folder."),
    query: str = typer.Argument(..., help="Query text."),
    k: int = typer.Option(defaults.TOP_K, "-k", "--k", min=1, help="Hits to return."),
    mode: str = typer.Option(defaults.RETRIEVAL_MODE, "--mode",
                             help="Retrieval: auto (hybrid where the index has BM25, else dense), dense, bm25, or "
                             "hybrid (dense + BM25, z-score fusion)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of {id, title, score, text}."),
    filters: list[str] = typer.Option(None, "--filter", help="Metadata filter KEY=VALUE (VALUE may be a|b; "
                                      "matches JSON or text metadata); repeatable."),
) -> None:
    """Search an index from the command line."""
    from clinrag.core.types import Query
    from clinrag.retrieval.retriever import IndexRetriever

    from clinrag.core.errors import ClinragError

    if not query.strip():
        raise ClinragError("QUERY is empty; give the text to search for")
    retrieval_mode = RetrievalMode.parse(mode, option="--mode")
    retriever = IndexRetriever(folder, mode=retrieval_mode, filters=parse_filters(filters))
    hits = retriever.retrieve([Query(query)], k)[0]
    if as_json:
        typer.echo(json.dumps([{"id": h.id, "title": h.passage.title, "score": h.score, "text": h.passage.text}
                               for h in hits], ensure_ascii=False, indent=2))
        return
    for h in hits:
        typer.echo(f"{h.rank + 1:>2}. [{h.score:.4f}] {h.id} — {h.passage.title}")
        typer.echo(f"    {h.passage.text[:200]}{'…' if len(h.passage.text) > 200 else ''}")


@index_app.command("evaluate")
def evaluate(
    folder: Path = typer.Argument(..., help="Index folder."),
    cases: list[Path] = typer.Argument(..., help="Case files with gold `evidence` passage ids."),
    modes: list[str] = typer.Option(None, "--mode", help="Modes to evaluate: dense, bm25, hybrid (repeatable; "
                                    "default all three)."),
    fusion: str = typer.Option(defaults.HYBRID_FUSION, "--fusion", help="How hybrid fuses dense and BM25: zscore "
                               "or rrf."),
    out: Path = typer.Option(None, "--out", help="Also write the results as JSON here."),
) -> None:
    """hit@5, recall@10 and MRR@10 of the gold evidence, per case file and retrieval mode (Markdown table).

    Each question as written is one query (no strategy); prints how many gold ids each file has outside the index.
    """
    from clinrag.retrieval.quality import evaluate_cases, markdown_table, missing_lines
    from clinrag.retrieval.retriever import IndexRetriever

    chosen = [RetrievalMode.parse(m, option="--mode").value for m in (modes or RetrievalMode.evaluated())]
    retriever = IndexRetriever(folder, fusion=_fusion(fusion))
    results = [evaluate_cases(retriever, c, chosen) for c in cases]
    for line in missing_lines(results):
        typer.echo(line, err=True)
    if out is not None:
        from clinrag.core.io import atomic_file_write

        payload = {"index": str(folder), "manifest": retriever.index.manifest, "results": results}
        atomic_file_write(out, json.dumps(payload, indent=2))
    typer.echo(markdown_table(results))


def _fusion(value: str) -> str:
    from clinrag.core.errors import ClinragError

    if value not in ("zscore", "rrf"):
        raise ClinragError(f"--fusion: unknown fusion {value!r} (valid: zscore, rrf)")
    return value


@index_app.command("tune-embedder")
def tune_embedder(
    cases: list[Path] = typer.Argument(..., help="Training case files with gold `evidence` (all are trained on)."),
    corpus: list[str] = typer.Option(..., "--corpus", help="The passages the evidence ids name (same formats as "
                                     "`index build`); repeatable."),
    out: Path = typer.Option(..., "--out", help="Folder for the tuned sentence-transformers model."),
    index: Path = typer.Option(None, "--index", help="Index to mine hard negatives from (built with the base "
                               "embedder when absent)."),
    embedder: str = typer.Option(defaults.DEFAULT_EMBEDDER, "--embedder", help="Base model to tune."),
    epochs: float = typer.Option(defaults.TUNE_EPOCHS, "--epochs", min=0.01, help="Passes over the training pairs."),
    seed: int = typer.Option(0, "--seed", help="Seed of shuffling and initialisation."),
    batch_size: int = typer.Option(defaults.TUNE_BATCH_SIZE, "--batch-size", min=2, help="Pairs per batch (in-batch negatives)."),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after this many steps (-1: run all epochs); "
                                  "only the (seeded) pairs those steps see are drawn."),
    max_seq_length: int = typer.Option(None, "--max-seq-length", min=8, help="Cut texts to N tokens while "
                                       "training (faster on a CPU; the saved model keeps its own limit)."),
    positives: int = typer.Option(defaults.TUNE_POSITIVES, "--positives", min=1, help="Gold passages used per question."),
    device: str = typer.Option(defaults.EMBED_DEVICE, "--device", help="Torch device (cpu, cuda)."),
) -> None:
    """Fine-tune the embedder on (question, gold passage) pairs with in-batch and mined hard negatives."""
    import time

    from clinrag.core.cases import load_cases
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import PassageIndex
    from clinrag.retrieval.tuning import TuneSpec
    from clinrag.retrieval.tuning import tune_embedder as tune

    loaded = [c for path in cases for c in load_cases(path)]
    passages = load_passages(_sources(corpus))
    emb = SentenceTransformerEmbedder(_model_name(embedder), device=device)
    if index is not None:
        idx = PassageIndex.load(index)
        idx.check_embedder(emb)
    else:
        typer.echo(f"no --index: embedding {len(passages)} passages with {embedder} for hard negatives …", err=True)
        start = time.perf_counter()
        idx = PassageIndex.build(passages, emb, bm25=False, show_progress=True)
        typer.echo(f"built in {time.perf_counter() - start:.0f} s", err=True)
    spec = TuneSpec(epochs=epochs, seed=seed, batch_size=batch_size, max_steps=max_steps,
                    max_seq_length=max_seq_length, positives_per_question=positives)
    record = tune(loaded, passages, out, index=idx, embedder=emb, spec=spec)
    typer.echo(f"wrote {out}: {record['pairs']} pairs from {record['distinct_questions']} questions, "
               f"{record['steps']} steps in {record['train_seconds']:.0f} s", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
