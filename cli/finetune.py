"""``clinrag finetune | export | augment``: SFT of the answering model, merging adapters, paraphrase augmentation.

Any config key works as ``--section.key value`` (or ``--key value`` when unambiguous) after the declared options;
see ``docs/finetuning.md``. Heavy libraries load inside the commands only.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .options import BAD_ROWS_HELP

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


class _Progress:
    """What an interrupted ``finetune`` leaves behind, and the safe points where a lost signal is raised again."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.step: int | None = None  # optimizer steps done, once training has started
        self.max_steps: int | None = None

    def describe(self) -> str:
        from clinrag.finetune.checkpoints import last_complete_checkpoint

        ckpts = self.out / "checkpoints"
        done = "" if self.step is None else f"training stopped after step {self.step} of {self.max_steps}; "
        last = last_complete_checkpoint(ckpts)
        if last is None:
            return (f"{done}no checkpoint was completed and no model was saved in {self.out} — rerun the same "
                    f"command to start again")
        return (f"{done}no final model was saved; the last complete checkpoint is {last[1]} (step {last[0]}) — "
                f"rerun the same command with --resume to continue from it")

    def callback(self) -> object:
        from transformers import TrainerCallback

        from .interrupts import check

        progress = self

        class InterruptPoints(TrainerCallback):
            """Records the step, and raises an interrupt whose exception was dropped (between steps, where
            stopping loses nothing but the step in progress)."""

            def on_init_end(self, args, state, control, **kw):
                check()

            def on_train_begin(self, args, state, control, **kw):
                progress.step, progress.max_steps = state.global_step, state.max_steps
                check()

            def on_step_begin(self, args, state, control, **kw):
                check()

            def on_substep_end(self, args, state, control, **kw):
                check()

            def on_step_end(self, args, state, control, **kw):
                progress.step = state.global_step
                check()

            def on_prediction_step(self, args, state, control, **kw):
                check()

            def on_save(self, args, state, control, **kw):
                check()

        return InterruptPoints()


def finetune(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="YAML config (sections model/data/peft/train; train also takes any TRL SFTConfig field)."),
    preset: str | None = typer.Option(None, "--preset", help="Preset: default or small-data."),
    model: str | None = typer.Option(None, "--model", help="Base model id or folder."),
    data: Path | None = typer.Option(None, "--data", help="Training cases (case schema)."),
    eval_data: Path | None = typer.Option(None, "--eval-data", help="Eval cases (else a held-out fraction)."),
    mode: str | None = typer.Option(None, "--mode", help="lora | qlora | full."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps (overrides epochs)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Training epochs."),
    out: Path | None = typer.Option(None, "--out", help="Output folder."),
    vocab_manifest: Path | None = typer.Option(None, "--vocab-manifest", help="added_tokens_manifest.json."),
    index: Path | None = typer.Option(None, "--index", help="Index folder for RAFT-style passages."),
    on_bad_rows: str | None = typer.Option(None, "--on-bad-rows", help=BAD_ROWS_HELP + " (config: data.on_bad_rows)"),
) -> None:
    """Fine-tune (QLoRA/LoRA/full SFT) on cases; extra --section.key value pairs override the config.

    --resume (or --resume true) continues from the last complete checkpoint in <out>/checkpoints."""
    from clinrag.finetune.config import load_config, parse_overrides

    overrides = parse_overrides(list(ctx.args))  # --resume [true|false] is one of these
    for key, value in (("preset", preset), ("model", model), ("data", data), ("eval_data", eval_data),
                       ("mode", mode), ("max_steps", max_steps), ("epochs", epochs), ("out", out),
                       ("vocab_manifest", vocab_manifest), ("index", index), ("on_bad_rows", on_bad_rows)):
        if value is not None:
            overrides[key] = str(value)
    cfg = load_config(config, overrides)
    from clinrag.finetune.sft import run_finetune

    from .interrupts import on_interrupt

    progress = _Progress(Path(cfg.train.out))
    on_interrupt(progress.describe)
    run_finetune(cfg, log=lambda m: typer.echo(m, err=True), callbacks=[progress.callback()])


def export(
    base: str = typer.Option(..., "--base", help="Base model id or folder the adapter was trained on."),
    adapter: Path = typer.Option(..., "--adapter", help="Adapter folder written by `clinrag finetune`."),
    out: Path = typer.Option(..., "--out", help="Folder for the merged standalone model + tokenizer."),
    dtype: str = typer.Option("auto", "--dtype", help="Weights dtype: auto (the base's), bf16, fp16 or fp32."),
) -> None:
    """Merge an adapter into its base and save a standalone model (transformers 4.x and 5.x, vLLM loadable)."""
    from clinrag.finetune.export import export_merged

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{out} was not written (it is written whole, at the end); rerun the same command")

    path = export_merged(base, adapter, out, dtype=dtype, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"wrote {path}", err=True)


def augment(
    cases: Path = typer.Argument(..., help="Case file to augment."),
    out: Path = typer.Option(..., "--out", help="JSONL with the originals followed by their paraphrases."),
    generator: str = typer.Option("hf", "--generator", help="Generator plugin whose LLM paraphrases."),
    model: str | None = typer.Option(None, "--model", help="Model for the generator (its `model` option)."),
    n: int = typer.Option(1, "--n", help="Paraphrases per case (each with a different rewrite instruction)."),
) -> None:
    """Paraphrase scenarios and questions with an LLM, keeping numbers, units, drug names and keys intact."""
    from clinrag.finetune.augment import augment_file

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{out} was not written (it is written whole, at the end); rerun the same command")

    stats = augment_file(cases, out, generator=generator, model=model, n=n,
                         log=lambda m: typer.echo(m, err=True))
    typer.echo(f"wrote {out}: {stats['kept']} paraphrases kept, {stats['rejected']} rejected", err=True)


def register(app: typer.Typer) -> None:
    app.command("finetune", context_settings=_EXTRA)(finetune)
    app.command("export")(export)
    app.command("augment")(augment)
