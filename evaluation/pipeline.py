"""``clinrag evaluate`` as a function: plan arms, run them (resumable), aggregate, write the outputs.

Outputs in ``out``: ``per_question.jsonl`` (written as cases finish), ``run.json`` (the configuration, checked
on resume), ``metrics.json``, ``report.md`` and PNG charts (written atomically at the end).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinrag.core import defaults
from clinrag.core.cases import Case

from .aggregate import aggregate
from .records import atomic_write, inputs_fingerprint
from .report import render_charts, render_markdown
from .runner import METRICS, AgentFactory, Arm, default_agent_factory, run_arms


def resolve_strategies(spec: str | Sequence[str]) -> list[str]:
    """``"all"`` → every registered strategy; ``"a,b"`` → checked names (unknown names list the valid ones)."""
    from clinrag.plugins.strategies import strategies

    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return strategies.names()
    for name in names:
        strategies.get_class(name)  # raises PluginError listing the valid names
    return names


def baseline_strategy() -> str:
    """The no-retrieval arm translates with ``none`` (:data:`~clinrag.core.defaults.NO_TRANSLATION_STRATEGY`, no LLM
    calls) when it is installed, else with the default strategy."""
    from clinrag.plugins.strategies import strategies

    none = defaults.NO_TRANSLATION_STRATEGY
    return none if none in strategies.names() else defaults.STRATEGY


def index_manifest(index: str | Path | Any) -> dict[str, Any] | None:
    """What the index holds (its manifest, checked), so records of a rebuilt index at the same path are not reused."""
    if isinstance(index, (str, Path)):
        from clinrag.retrieval.store import PassageIndex

        return PassageIndex.read_manifest(index)
    manifest = getattr(getattr(index, "index", None), "manifest", None)
    return manifest if isinstance(manifest, dict) else None


def recorded_generator_options(arms: Sequence[Arm], options: dict[str, Any]) -> tuple[dict[str, Any],
                                                                                         dict[str, dict[str, Any]]]:
    """The generator options as a run records them, and per generator of ``arms`` the settings they resolve to here
    (e.g. ``{"hf": {"answer_dtype": "bfloat16-weights"}}``) from generators that report them
    (:class:`~clinrag.plugins.generators.base.ResolvesRunSettings`). Options such a generator resolves (``dtype``)
    are recorded by their resolved value only: ``dtype=float32`` asked and float32 by default are the same run, a
    default that changed is not. Generators with nothing implicit are left out."""
    from clinrag.plugins.generators import generators
    from clinrag.plugins.generators.base import ResolvesRunSettings

    settings, resolved_keys = {}, set()
    for name in sorted({arm.generator for arm in arms}):
        cls = generators.get_class(name)
        if isinstance(cls, ResolvesRunSettings):
            resolved_keys.update(cls.resolved_options)
            if resolved := cls.resolved_settings(options):
                settings[name] = resolved
    return {k: v for k, v in options.items() if k not in resolved_keys}, settings


def run_evaluation(cases: Sequence[Case], arms: Sequence[Arm], out: str | Path, *, index: str | Path | Any,
                   k: int = defaults.TOP_K, generator_options: dict[str, Any] | None = None, workers: int = 1,
                   max_scenario_words: int | None = defaults.MAX_SCENARIO_WORDS, config: dict[str, Any] | None = None,
                   agent_factory: AgentFactory | None = None, command: str | None = None,
                   n_resamples: int = defaults.BOOTSTRAP_RESAMPLES, progress: bool = True,
                   translator_model: str | None = None, llm_budget: int | None = None) -> dict[str, Any]:
    """Run ``arms`` on ``cases`` and write every output into ``out``; returns the ``metrics.json`` object."""
    out = Path(out)
    factory = agent_factory or default_agent_factory(index, k=k, generator_options=generator_options,
                                                     translator_model=translator_model, llm_budget=llm_budget)
    recorded_options, resolved = recorded_generator_options(arms, generator_options or {})
    run_config = {"index": str(Path(index).resolve()) if isinstance(index, (str, Path)) else type(index).__name__,
                  "k": k, "generator_options": recorded_options, "max_scenario_words": max_scenario_words,
                  **({"translator_model": translator_model} if translator_model else {}),
                  **({"llm_budget": llm_budget} if llm_budget is not None else {}), **(config or {})}
    if resolved:  # what the options mean on this machine: a changed default must not resume old results
        run_config["generator_settings"] = resolved
    result = run_arms(cases, arms, out, agent_factory=factory, config=run_config, workers=workers,
                      max_scenario_words=max_scenario_words, progress=progress,
                      inputs=inputs_fingerprint(run_config, index_manifest(index)))
    ids = [c.id for c in cases]
    metrics = aggregate(result.records, arms, ids, sum(c.n_questions for c in cases), n_resamples=n_resamples)
    atomic_write(out / METRICS, json.dumps(metrics, indent=2, ensure_ascii=False))
    charts = render_charts(metrics, out)
    atomic_write(out / "report.md", render_markdown(metrics, command=command, charts=charts))
    metrics["_run"] = {"ran": result.ran, "skipped": result.skipped, "failed": result.failed,
                       **({"recomputed": result.recomputed} if result.recomputed else {})}
    return metrics
