"""The ``clinrag`` command line. Sub-command modules import heavy libraries inside their commands only,
so ``clinrag --help`` never imports torch."""

from __future__ import annotations

import importlib
import sys

import typer
from clinrag.core.errors import ClinragError

app = typer.Typer(name="clinrag", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Answer multi-question clinical cases with retrieval-augmented generation, and fine-tune "
                       "the model that answers them.")

# Each module defines ``register(app)``. Listed here so adding a command is one line.
COMMAND_MODULES = [
    "clinrag.cli.answer",
    "clinrag.cli.evaluate",
    "clinrag.cli.finetune",
    "clinrag.cli.graph",
    "clinrag.cli.index",
    "clinrag.cli.models",
    "clinrag.cli.plugins",
    "clinrag.cli.serve",
    "clinrag.cli.ui",
    "clinrag.cli.vocab",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        from clinrag.core import __version__

        typer.echo(__version__)
        raise typer.Exit()


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one clear line (exit 2) instead of a traceback; Ctrl-C / SIGTERM print what
    was completed and how to resume (exit 130 / 143)."""
    from . import interrupts

    quiet_third_party_noise()
    with interrupts.handling():
        try:
            code = app(args=argv, standalone_mode=False)
        except ClinragError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            return 2
        except typer.Exit as exc:
            return exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            code = interrupts.EXIT_SIGINT
        except RecursionError:  # deeply nested input (JSON, YAML) that a parser met before our checks did
            typer.secho("error: input is nested too deeply to read (a JSON or YAML value nested thousands of "
                        "levels); fix the file", fg=typer.colors.RED, err=True)
            return 2
        except Exception as exc:
            # Usage errors (bad option values, missing arguments). Matched by class name because typer vendors its
            # own copy of click, whose ClickException is not click.ClickException.
            if any(c.__name__ == "ClickException" for c in type(exc).__mro__):
                exc.show()
                return exc.exit_code
            raise
        # typer turns a KeyboardInterrupt inside a command into exit code 130 (returned, not raised)
        if code == interrupts.EXIT_SIGINT:
            typer.secho(interrupts.message(), fg=typer.colors.YELLOW, err=True)
            return interrupts.exit_code()
        return code if isinstance(code, int) else 0


def quiet_third_party_noise() -> None:
    """Silence third-party lines that say nothing a user can act on (by logger and message, never globally):
    bitsandbytes logs "Failed to load CPU gemm_4bit_forward" when torch imports it on a machine without its CPU
    kernels, before any output of ours; TRL and PEFT read transformers' deprecated ``is_gradient_checkpointing``
    property, which warns on every training run (a FutureWarning about library code, not about anything of the
    user's)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "gemm_4bit_forward" not in record.getMessage()

    for name in ("bitsandbytes", "bitsandbytes.cextension", "bitsandbytes.backends.cpu.ops"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) for f in logger.filters):
            logger.addFilter(_Drop())


if __name__ == "__main__":
    sys.exit(main())
