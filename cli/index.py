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


@index_app.command("build")
def build(
    corpus: list[str] = typer.Argument(..., help="Passages: .jsonl ({id, title, text, ...}), .txt, .md, folders, "
                                                 "saved HF dataset folders, or hf:NAME[:SPLIT]."),
    out: Path = typer.Option(..., "--out", help="Index folder to write: absent, empty or an earlier index "
                             "(replaced whole, atomically); never a folder of yours."),
    embedder: str = typer.Option(defaults.DEFAULT_EMBEDDER, "--embedder",
                                 help="sentence-transformers model name or path."),
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
    from clinrag.retrieval.ann import AnnSpec
    from clinrag.retrieval.chunking import ChunkSpec
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import PassageIndex

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{out} was not written (an index is written whole, at the end); rerun the same command")
    index_type = IndexType.parse(index, option="--index")
    precision_setting = Precision.parse(precision, option="--precision")
    spec = AnnSpec.of(index_type.value, M=hnsw_m, ef_search=ef_search, nlist=nlist, nprobe=nprobe)
    chunking = ChunkSpec(chunk_tokens, overlap)
    bad_rows = BadRows.of(on_bad_rows, report=report_line)
    passages = load_passages(_sources(corpus), bad_rows)
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
                             help="dense, bm25, or hybrid (reciprocal-rank fusion)."),
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
    out: Path = typer.Option(None, "--out", help="Also write the results as JSON here."),
) -> None:
    """hit@5, recall@10 and MRR@10 of the gold evidence, per case file and retrieval mode (Markdown table)."""
    from clinrag.retrieval.quality import evaluate_cases, markdown_table
    from clinrag.retrieval.retriever import IndexRetriever

    chosen = [RetrievalMode.parse(m, option="--mode").value for m in (modes or list(RetrievalMode))]
    retriever = IndexRetriever(folder)
    results = [evaluate_cases(retriever, c, chosen) for c in cases]
    if out is not None:
        from clinrag.core.io import atomic_file_write

        payload = {"index": str(folder), "manifest": retriever.index.manifest, "results": results}
        atomic_file_write(out, json.dumps(payload, indent=2))
    typer.echo(markdown_table(results))


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
