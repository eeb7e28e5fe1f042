"""``clinrag strategies list`` and ``clinrag generators list``."""

from __future__ import annotations

import typer

strategies_app = typer.Typer(no_args_is_help=True, help="Query-translation strategy plugins.")
generators_app = typer.Typer(no_args_is_help=True, help="Answer generator plugins.")


@strategies_app.command("list")
def list_strategies() -> None:
    """Show each strategy's name, LLM calls per question and description."""
    from clinrag.plugins.strategies import list_strategies as rows
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "LLM calls / question", "description")
    for r in rows():
        table.add_row(r["name"], f"{r['llm_calls_per_question']:g}", r["description"])
    Console().print(table)


@generators_app.command("list")
def list_generators() -> None:
    """Show each generator's name and description."""
    from clinrag.plugins.generators import list_generators as rows
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "description")
    for r in rows():
        table.add_row(r["name"], r["description"])
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(strategies_app, name="strategies")
    app.add_typer(generators_app, name="generators")
