"""``clinrag answer`` and ``clinrag graph``."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer


class OutputFormat(str, Enum):
    md = "md"
    json = "json"


def answer(
    cases: Path = typer.Argument(..., help="Case file (.jsonl, .json or .csv)."),
    index: Path = typer.Option(..., "--index", help="Index folder built with `clinrag index build`."),
    case_id: str = typer.Option(None, "--case-id", help="Answer only this case."),
    strategy: str = typer.Option("decomposition", "--strategy", help="Query-translation strategy (see `clinrag strategies list`)."),
    generator: str = typer.Option("extractive", "--generator", help="Answer generator (see `clinrag generators list`)."),
    k: int = typer.Option(5, "-k", "--k", min=1, help="Passages retrieved per sub-question."),
    fmt: OutputFormat = typer.Option(OutputFormat.md, "--format", help="md (readable) or json (one object per line)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Answer at most this many cases."),
) -> None:
    """Answer clinical cases: a summary plus one answer per question, each with its sources."""
    from clinrag.agent.run import build_agent
    from clinrag.cases import load_cases, select_case

    selected = select_case(load_cases(cases), case_id)[:limit]
    agent = build_agent(index, strategy=strategy, generator=generator, k=k)
    for response in agent.answer_all(selected):
        if fmt is OutputFormat.json:
            typer.echo(json.dumps(response.model_dump(), ensure_ascii=False))
        else:
            typer.echo(response.to_markdown())


def graph(out: Path = typer.Option(None, "--out", help="Write a PNG (.png) or Mermaid text (.mmd/.md); "
                                                       "prints Mermaid when omitted.")) -> None:
    """Draw the agent graph."""
    from clinrag.agent.graph import build_graph

    drawable = build_graph().get_graph()
    if out is not None and out.suffix == ".png":
        out.write_bytes(drawable.draw_mermaid_png())
    elif out is not None:
        out.write_text(drawable.draw_mermaid(), encoding="utf-8")
    else:
        typer.echo(drawable.draw_mermaid())


def register(app: typer.Typer) -> None:
    app.command("answer")(answer)
    app.command("graph")(graph)
