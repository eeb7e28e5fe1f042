"""``clinrag models``: the offline Qwen2.5-0.5B stand-in, and one-time conversion of ``.gguf`` files."""

from __future__ import annotations

from pathlib import Path

import typer

models_app = typer.Typer(no_args_is_help=True, help="Provide and convert models (offline stand-in, GGUF cache).")


def _log(message: str) -> None:
    typer.echo(message, err=True)


@models_app.command("standin")
def standin(
    out: Path = typer.Option(None, "--out",
                             help="Link the converted model here (e.g. .cache/models/qwen2.5-coder-0.5b-instruct)."),
) -> None:
    """Fetch, verify, assemble and convert Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), the offline stand-in for
    Qwen/Qwen2.5-0.5B-Instruct; each step runs once per machine (cache: ~/.cache/clinrag). Prints the folder."""
    from clinrag.core.models.standin import provide

    typer.echo(str(provide(out, log=_log)))


@models_app.command("convert")
def convert(gguf: Path = typer.Argument(..., help="A .gguf model file.")) -> None:
    """Convert a .gguf file once into the safetensors cache that every --model FILE.gguf then loads; prints it."""
    from clinrag.core.models.gguf import ensure_converted

    typer.echo(str(ensure_converted(gguf, log=_log)))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
