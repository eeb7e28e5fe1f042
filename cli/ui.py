"""``clinrag ui``: the web page for clinicians (Gradio; ``pip install 'clinrag[ui]'``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer
from clinrag.core import defaults


def ui(
    host: str = typer.Option(defaults.SERVE_HOST, "--host", help="Interface to bind (127.0.0.1: this machine only)."),
    port: int = typer.Option(defaults.UI_PORT, "--port", min=1, max=65535, help="TCP port."),
    index: str = typer.Option(None, "--index", help="Index folder (default: $CLINRAG_INDEX, else the demo index "
                              f"{defaults.DEMO_INDEX} that `make demo` builds)."),
    cases: list[Path] = typer.Option(None, "--cases", help="Case file(s) to pick cases from (.jsonl, .json, .csv; "
                                     "repeatable). Files can also be uploaded on the page."),
    strategy: str = typer.Option(defaults.STRATEGY, "--strategy", help="Strategy selected when the page opens."),
    generator: str = typer.Option(defaults.GENERATOR, "--generator", help="Generator selected when the page opens."),
    model: str = typer.Option(None, "--model", help="Model for the hf/openai generators (hub id, folder, .gguf)."),
    k: int = typer.Option(defaults.TOP_K, "-k", "--k", min=1, max=20, help="Passages per sub-question at first."),
    mode: str = typer.Option(defaults.RETRIEVAL_MODE, "--mode", help="Retrieval at first: dense, bm25 or hybrid."),
) -> None:
    """Serve a web page to paste or pick a case, watch each step, and read the answers with their sources."""
    from clinrag.core.errors import ClinragError
    from clinrag.retrieval.options import RetrievalMode

    mode = RetrievalMode.parse(mode, option="--mode").value
    if importlib.util.find_spec("gradio") is None:
        raise ClinragError("clinrag ui needs Gradio: pip install 'clinrag[ui]'")
    from clinrag.serving.ui import launch

    typer.echo(f"clinrag ui at http://{host}:{port} (Ctrl-C to stop)", err=True)
    launch(host=host, port=port, index=index, case_files=cases or [], strategy=strategy, generator=generator,
           model=model, k=k, mode=mode)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
