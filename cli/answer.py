"""``clinrag answer`` (``clinrag graph`` is in :mod:`clinrag.cli.graph`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from clinrag.core import defaults
from clinrag.core.choices import Choice

from .options import BAD_ROWS_HELP, generator_options, parse_key_values, report_line


class OutputFormat(Choice):
    md = "md"
    json = "json"


def answer(
    cases: Path = typer.Argument(..., help="Case file (.jsonl, .json or .csv)."),
    index: Path = typer.Option(None, "--index", help="Index folder built with `clinrag index build` "
                               "(required except with --answer-mode single_pass)."),
    case_id: str = typer.Option(None, "--case-id", help="Answer only this case."),
    strategy: str = typer.Option(defaults.STRATEGY, "--strategy",
                                 help="Query-translation strategy (see `clinrag strategies list`)."),
    generator: str = typer.Option(defaults.GENERATOR, "--generator",
                                  help="Answer generator (see `clinrag generators list`)."),
    k: int = typer.Option(defaults.TOP_K, "-k", "--k", min=1, help="Passages retrieved per sub-question."),
    mode: str = typer.Option(defaults.RETRIEVAL_MODE, "--mode",
                             help="Retrieval: auto (hybrid where the index has BM25, else dense), dense, bm25, or "
                             "hybrid (dense + BM25, z-score fusion)."),
    fmt: str = typer.Option(OutputFormat.md.value, "--format", help="md (readable) or json (one object per line)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Answer at most this many cases."),
    model: str = typer.Option(None, "--model", help="LLM generators: hub id, local folder or .gguf file."),
    adapter: str = typer.Option(None, "--adapter", help="hf generator: a PEFT adapter folder."),
    base_url: str = typer.Option(None, "--base-url", help="openai generator: the server's base URL."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="LLM generators: answer length cap."),
    option: list[str] = typer.Option(None, "--option", help="Extra generator option KEY=VALUE (repeatable)."),
    strategy_option: list[str] = typer.Option(None, "--strategy-option", help="Strategy option KEY=VALUE (repeatable)."),
    translator_model: str = typer.Option(None, "--translator-model", help="LLM for query translation, if it "
                                         "should differ from the answering generator's (hub id, folder, .gguf)."),
    llm_budget: int = typer.Option(None, "--llm-budget", min=0, help="Max LLM calls query translation may spend per case."),
    on_bad_rows: str = typer.Option("error", "--on-bad-rows", help=BAD_ROWS_HELP),
    answer_mode: str = typer.Option(defaults.ANSWER_MODE, "--answer-mode",
                                    help="per_question (translate, retrieve, answer each) or single_pass (whole "
                                         "case in one LLM call, no retrieval)."),
) -> None:
    """Answer clinical cases: a summary plus one answer per question, each with its sources."""
    from clinrag.agent.context import AnswerMode
    from clinrag.agent.run import build_agent
    from clinrag.core.badrows import BadRows
    from clinrag.core.cases import load_cases, select_case
    from clinrag.retrieval.options import RetrievalMode

    out_format = OutputFormat.parse(fmt, option="--format")
    retrieval_mode = RetrievalMode.parse(mode, option="--mode")
    amode = AnswerMode.parse(answer_mode, option="--answer-mode")
    strategy_options = parse_key_values(strategy_option, "--strategy-option")
    gen_options = generator_options(model, adapter, base_url, max_new_tokens, option)
    bad_rows = BadRows.of(on_bad_rows, report=report_line)
    selected = select_case(load_cases(cases, bad_rows=bad_rows), case_id)[:limit]
    agent = build_agent(index, strategy=strategy, generator=generator, k=k, strategy_options=strategy_options,
                        generator_options=gen_options, translator_model=translator_model, llm_budget=llm_budget,
                        retrieval_mode=retrieval_mode, answer_mode=amode)
    from .interrupts import on_interrupt

    printed: list[str] = []
    on_interrupt(lambda: f"answered {len(printed)} of {len(selected)} cases (printed above"
                         f"{': ' + ', '.join(printed[-3:]) if printed else ''}); the others were not answered — rerun "
                         f"for them (--case-id ID answers one)")
    for response in agent.answer_all(selected):
        printed.append(response.case_id)
        if out_format is OutputFormat.json:
            typer.echo(json.dumps(response.model_dump(), ensure_ascii=False))
        else:
            typer.echo(response.to_markdown())
    if bad_rows.summary():
        report_line(f"{bad_rows.summary()}: {cases}")


def register(app: typer.Typer) -> None:
    app.command("answer")(answer)
