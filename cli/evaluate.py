"""``clinrag evaluate`` (arms side by side on held-out cases) and ``clinrag subset-index``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from clinrag.core import defaults

from .options import BAD_ROWS_HELP, report_line


def evaluate(
    cases: Path = typer.Argument(..., help="Case file (.jsonl, .json or .csv) with reference fields."),
    index: Path = typer.Option(..., "--index", help="Index folder (`clinrag index build` or `clinrag subset-index`)."),
    strategies: str = typer.Option("all", "--strategies", help="Comma-separated strategies, or 'all' (every installed one)."),
    generator: str = typer.Option(defaults.GENERATOR, "--generator",
                                  help="Generator, or several comma-separated to compare."),
    model: str = typer.Option(None, "--model", help="LLM generators: hub id, local folder or .gguf file."),
    adapter: list[str] = typer.Option(None, "--adapter", help="A PEFT adapter folder: every arm runs with and "
                                      "without it. Repeat to compare adapters (paired, adapter vs adapter)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="LLM generators: answer length cap."),
    option: list[str] = typer.Option(None, "--option", help="Extra generator option KEY=VALUE (repeatable)."),
    translator_model: str = typer.Option(None, "--translator-model", help="LLM for query translation (hub id, "
                                         "folder, .gguf) when it should differ from the generator's own."),
    llm_budget: int = typer.Option(None, "--llm-budget", min=0, help="Max LLM calls query translation may spend per case."),
    k: int = typer.Option(defaults.TOP_K, "-k", "--k", min=1, help="Passages retrieved per sub-question."),
    limit: int = typer.Option(None, "--limit", min=1, help="Evaluate the first N cases only."),
    out: Path = typer.Option(Path("eval-out"), "--out", help="Output folder (resumable: finished cases are skipped)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Cases run concurrently (threads)."),
    no_retrieval: bool = typer.Option(True, "--no-retrieval-arm/--skip-no-retrieval-arm",
                                      help="Add the baseline arm whose retriever returns nothing."),
    max_scenario_words: int = typer.Option(defaults.MAX_SCENARIO_WORDS, "--max-scenario-words", min=0,
                                           help="Truncate longer scenarios (with a warning naming the case); 0: never."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete --out first instead of resuming into it."),
    resamples: int = typer.Option(defaults.BOOTSTRAP_RESAMPLES, "--bootstrap-resamples", min=100,
                                  help="Paired bootstrap resamples."),
    on_bad_rows: str = typer.Option("error", "--on-bad-rows", help=BAD_ROWS_HELP),
) -> None:
    """Evaluate strategies (and generators / an adapter) side by side: metrics.json, per_question.jsonl,
    report.md and charts in --out."""
    import logging

    from clinrag.cli.options import generator_options
    from clinrag.core.badrows import BadRows
    from clinrag.core.cases import load_cases
    from clinrag.core.io import remove_own_output
    from clinrag.evaluation.pipeline import (
        baseline_strategy,
        resolve_strategies,
        run_evaluation,
    )
    from clinrag.evaluation.runner import is_evaluation_output, plan_arms
    from clinrag.plugins.generators import generators

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    bad_rows = BadRows.of(on_bad_rows, report=report_line)
    selected = load_cases(cases, bad_rows=bad_rows)[:limit]
    gens = [g.strip() for g in generator.split(",") if g.strip()]
    for g in gens:
        generators.get_class(g)  # unknown names fail here, listing the valid ones
    arms = plan_arms(resolve_strategies(strategies), gens, adapter, no_retrieval=no_retrieval,
                     baseline_strategy=baseline_strategy())
    if overwrite:
        remove_own_output(out, "evaluate", allowed=is_evaluation_output)
    opts = generator_options(model, None, None, max_new_tokens, option)
    from clinrag.evaluation.runner import count_done

    from .interrupts import on_interrupt

    total = len(arms) * len(selected)
    on_interrupt(lambda: f"{count_done(out)} of {total} arm×case results are saved in {out}/per_question.jsonl; "
                         f"metrics.json and report.md were not written — rerun the same command to resume")
    metrics = run_evaluation(selected, arms, out, index=index, k=k, generator_options=opts, workers=workers,
                             max_scenario_words=max_scenario_words or None, n_resamples=resamples,
                             translator_model=translator_model, llm_budget=llm_budget,
                             config={"cases": str(cases.resolve())},
                             command="clinrag evaluate " + " ".join(shlex.quote(a) for a in sys.argv[2:]))
    run = metrics.pop("_run")
    recomputed = f" (recomputed {run['recomputed']})" if run.get("recomputed") else ""
    typer.echo(f"{len(arms)} arms × {len(selected)} cases: ran {run['ran']}{recomputed}, resumed {run['skipped']}, "
               f"failed {run['failed']} → {out}/metrics.json, report.md")
    if bad_rows.summary():
        report_line(f"{bad_rows.summary()}: {cases}")


def subset_index(
    cases: list[Path] = typer.Argument(..., help="Case files whose gold evidence must be in the index."),
    corpus: Path = typer.Option(..., "--corpus", help="Passage file/folder (e.g. ../shared/data/corpus)."),
    out: Path = typer.Option(..., "--out", help="Index folder to write."),
    extra: int = typer.Option(defaults.SUBSET_DISTRACTORS, "--extra", min=0,
                              help="Other corpus passages added as distractors (seeded sample)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N cases of each file."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Build a small index (gold evidence of the cases + N distractors) for quick evaluations."""
    from clinrag.core.cases import load_cases
    from clinrag.evaluation.subset import build_subset_index

    selected = [c for path in cases for c in load_cases(path)[:limit]]
    path = build_subset_index(selected, corpus, out, extra=extra, seed=seed)
    typer.echo(f"subset index of {len(selected)} cases' evidence + {extra} passages → {path}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("subset-index")(subset_index)
