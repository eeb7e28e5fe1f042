"""``clinrag index …``: build and inspect passage indexes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

index_app = typer.Typer(no_args_is_help=True, help="Build and inspect passage indexes.")


@index_app.command("build")
def build(
    corpus: list[Path] = typer.Argument(..., help="Passage files: .jsonl ({id, title, text}), .txt, .md, or folders."),
    out: Path = typer.Option(..., "--out", help="Index folder to write (replaced atomically)."),
    embedder: str = typer.Option("all-MiniLM-L6-v2", "--embedder", help="sentence-transformers model name or path."),
) -> None:
    """Embed passages into a FAISS index saved with the passages."""
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import DenseIndex

    passages = load_passages(corpus)
    typer.echo(f"embedding {len(passages)} passages with {embedder} …", err=True)
    index = DenseIndex.build(passages, SentenceTransformerEmbedder(embedder), show_progress=True)
    index.save(out)
    typer.echo(f"wrote {out} ({len(index)} passages, dim {index.dimension})", err=True)


@index_app.command("info")
def info(folder: Path = typer.Argument(..., help="Index folder.")) -> None:
    """Print an index's manifest."""
    from clinrag.retrieval.store import DenseIndex

    typer.echo(json.dumps(DenseIndex.load(folder).manifest, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
