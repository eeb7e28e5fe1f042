"""Run every arm on every case through the same graph ``clinrag answer`` runs, and record each question.

An *arm* is one (strategy, generator, adapter) combination, or the no-retrieval baseline (a retriever that
returns nothing, so the generator answers from the scenario alone). Components are shared across arms: one
index and embedder for all, one generator instance per (generator, adapter), so a model loads once.

Records go to ``per_question.jsonl`` as each case finishes (flushed), so an interrupted run loses at most
the cases in flight; a rerun with the same configuration skips finished cases and retries failed ones.
A case that raises is recorded with its error and the run goes on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinrag.core import defaults
from clinrag.core.cases import Case
from clinrag.core.errors import ClinragError
from clinrag.core.io import claim_output_dir

from .records import atomic_write, case_hash, input_key, load_records, plan_resume
from .scoring import score_case

log = logging.getLogger("clinrag.evaluation")

NO_RETRIEVAL = "no-retrieval"
RECORDS, METRICS, RUN = "per_question.jsonl", "metrics.json", "run.json"
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_RANGES}]")
_UNITS = re.compile(f"[{_CJK_RANGES}]\\s*|[^\\s{_CJK_RANGES}]+\\s*")  # one CJK character, or one other word


def is_evaluation_output(name: str) -> bool:
    """Whether a file name in an evaluation folder is one ``clinrag evaluate`` writes (``--overwrite`` deletes
    only such folders)."""
    return name in (RECORDS, METRICS, RUN, "report.md") or name.endswith(".png") or name.startswith(f".{RECORDS}.") \
        or name.startswith(f".{RUN}.") or name.startswith(f".{METRICS}.") or name.startswith(".report.md.")


class EvaluationError(ClinragError):
    """The evaluation cannot run as asked (mismatched resume folder, no arms, …)."""


@dataclass(frozen=True)
class Arm:
    """One column of the comparison. ``retrieval=False`` is the no-retrieval baseline."""

    name: str
    strategy: str
    generator: str
    adapter: str | None = None
    retrieval: bool = True


def adapter_label(adapter: str) -> str:
    return Path(adapter.rstrip("/")).name or adapter


def plan_arms(strategies: Sequence[str], generators: Sequence[str], adapter: str | Sequence[str] | None = None, *,
              no_retrieval: bool = True, baseline_strategy: str = defaults.STRATEGY) -> list[Arm]:
    """The arms of one run. Names are the strategy alone when one generator (and no adapter) is compared,
    else ``strategy@generator[+adapter]``; the baseline is ``no-retrieval`` (with the same suffix). ``adapter``
    is one folder or several (e.g. tuned with and without an extended vocabulary): each adds its own arms, named by
    its folder, so their folder names must differ."""
    if not strategies:
        raise EvaluationError("no strategies to evaluate")
    if not generators:
        raise EvaluationError("no generators to evaluate")
    adapters = [adapter] if isinstance(adapter, str) else list(dict.fromkeys(adapter or ()))
    labels = [adapter_label(a) for a in adapters]
    clash = sorted({label for label in labels if labels.count(label) > 1})
    if clash:
        raise EvaluationError(f"--adapter: two adapter folders are both named {clash[0]!r}, and arms are named by "
                              f"the folder; rename one")
    variants: list[tuple[str, str | None]] = [(g, None) for g in generators]
    if adapters:
        with_adapter = [g for g in generators if "adapter" in (accepted_options(g) or {"adapter"})]
        if not with_adapter:
            raise EvaluationError(f"--adapter needs a generator that loads adapters (e.g. hf); got "
                                  f"{', '.join(generators)}")
        variants += [(g, a) for a in adapters for g in with_adapter]
    plain = len(variants) == 1
    arms = []
    for gen, ad in variants:
        suffix = "" if plain else f"@{gen}" + (f"+{adapter_label(ad)}" if ad else "")
        for s in dict.fromkeys(strategies):
            arms.append(Arm(f"{s}{suffix}", s, gen, ad))
        if no_retrieval:
            arms.append(Arm(f"{NO_RETRIEVAL}{suffix}", baseline_strategy, gen, ad, retrieval=False))
    return arms


class NullRetriever:
    """The no-retrieval arm's retriever: every query gets no passages."""

    def retrieve(self, queries: Sequence[Any], k: int) -> list[list[Any]]:
        return [[] for _ in queries]


# -- long scenarios ---------------------------------------------------------------------------------------

def text_length(text: str) -> int:
    """Approximate length in words; each CJK character counts as one (CJK text has no spaces)."""
    return len(_CJK.sub(" ", text).split()) + len(_CJK.findall(text))


def truncate_scenario(case: Case, max_words: int | None) -> tuple[Case, str | None]:
    """``case`` with its scenario cut to ``max_words`` (CJK characters count as words), and a note naming the
    case when it was cut; generators may truncate further when they build their prompts."""
    if not max_words:
        return case, None
    n = text_length(case.clinical_scenario)
    if n <= max_words:
        return case, None
    kept, count = [], 0
    for token in _UNITS.findall(case.clinical_scenario.lstrip()):
        count += 1
        if count > max_words:
            break
        kept.append(token)
    text = "".join(kept).rstrip() + " …"
    note = (f"case {case.id!r}: clinical scenario has ~{n} words, beyond the {max_words}-word limit "
            f"(--max-scenario-words); truncated to its first {max_words}")
    return case.model_copy(update={"clinical_scenario": text}), note


# -- agents -----------------------------------------------------------------------------------------------

AgentFactory = Callable[[Arm], Any]


def accepted_options(generator: str) -> set[str] | None:
    """The keyword options a generator's constructor takes (None: it takes any)."""
    import inspect

    from clinrag.plugins.generators import generators

    params = inspect.signature(generators.get_class(generator)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def generator_kwargs(generator: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` minus those ``generator`` does not take, so ``--generator extractive,hf --model M`` gives the
    model to ``hf`` only (what was dropped is logged)."""
    accepted = accepted_options(generator)
    if accepted is None:
        return options
    dropped = sorted(set(options) - accepted)
    if dropped:
        log.info("generator %r takes no %s option(s); not passed to it", generator, ", ".join(dropped))
    return {k: v for k, v in options.items() if k in accepted}


def default_agent_factory(index: str | Path | Any, *, k: int, generator_options: dict[str, Any] | None = None,
                          llm_budget: int | None = None, translator_model: str | None = None) -> AgentFactory:
    """One agent per arm over one shared retriever. Each (generator, adapter) pair's generator is built once and
    shared by every strategy (and the no-retrieval arm); the translator LLM is loaded once per plugin loading it."""
    from clinrag.agent.context import AgentContext
    from clinrag.agent.run import Agent, build_generator, translator_loader
    from clinrag.plugins.strategies import get_strategy
    from clinrag.retrieval.retriever import IndexRetriever

    retriever = index if hasattr(index, "retrieve") else IndexRetriever(index)
    built: dict[tuple[str, str | None], Any] = {}
    translators: dict[type, Any] = {}  # one translator LLM per plugin class loading it
    lock = threading.Lock()

    def generator_for(arm: Arm) -> Any:
        key = (arm.generator, arm.adapter)
        if key not in built:
            opts = generator_kwargs(arm.generator, dict(generator_options or {}))
            if arm.adapter:
                opts["adapter"] = arm.adapter
            built[key] = build_generator(arm.generator, opts, retriever=retriever)
        return built[key]

    def translator_for(arm: Arm) -> Any:
        if translator_model is None:
            return None
        loader = translator_loader(arm.generator)
        if loader not in translators:
            translators[loader] = loader.load_chat_llm(translator_model)
        return translators[loader]

    def factory(arm: Arm) -> Any:
        with lock:
            return Agent(AgentContext(retriever=retriever if arm.retrieval else NullRetriever(),
                                      generator=generator_for(arm), strategy=get_strategy(arm.strategy),
                                      translator_llm=translator_for(arm), k=k, llm_budget=llm_budget))

    return factory


def evaluate_case(agent: Any, arm: Arm, case: Case, *, max_scenario_words: int | None = None) -> list[dict[str, Any]]:
    """Answer one case with one arm and score it; any exception is recorded, never raised."""
    case_in, note = truncate_scenario(case, max_scenario_words)
    if note:
        log.warning("%s", note)
    start = time.perf_counter()
    response, error = None, None
    try:
        response = agent.answer(case_in)
    except Exception as exc:  # one bad case must not stop the run
        error = f"{type(exc).__name__}: {exc}"
        log.warning("case %r failed in arm %r: %s", case.id, arm.name, error)
    seconds = time.perf_counter() - start
    rows, case_fields = score_case(case, response, retrieval=arm.retrieval)
    case_fields["seconds"] = round(seconds, 4)
    if note:
        case_fields["notes"] = [note, *case_fields["notes"]]
    return [{"arm": arm.name, "case_id": case.id, **row, "case": case_fields, "error": error,
             "rows_in_case": len(rows)} for row in rows]


def _warm_up(agents: dict[str, Any], arms: Sequence[Arm], case: Case) -> None:
    seen: set[tuple[str, str | None]] = set()
    for arm in arms:
        if (arm.generator, arm.adapter) not in seen:
            seen.add((arm.generator, arm.adapter))
            try:
                agents[arm.name].answer(truncate_scenario(case, 200)[0])
            except Exception:  # the timed run records the error
                pass


@dataclass
class RunResult:
    records: list[dict[str, Any]]
    ran: int
    skipped: int
    failed: int
    recomputed: str = ""  # "N (why…)": stored results not reused, see records.Resume.describe


def read_run_config(run_file: Path) -> dict[str, Any]:
    """The configuration a folder's earlier run saved (one-line error when it is unreadable)."""
    try:
        previous = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EvaluationError(f"{run_file}: corrupted ({str(exc).splitlines()[0][:80]}); its results cannot be "
                              f"matched to a configuration: use another --out or --overwrite") from None
    if not isinstance(previous, dict):
        raise EvaluationError(f"{run_file}: corrupted (not a JSON object); use another --out or --overwrite")
    return previous


def count_done(out: str | Path) -> int:
    """Finished (arm, case) results stored in ``out`` (for the interrupt message)."""
    rows = load_records(Path(out) / RECORDS)
    return len({(r["arm"], r["case_id"]) for r in rows if r.get("question_index") == r.get("rows_in_case")})


def run_arms(cases: Sequence[Case], arms: Sequence[Arm], out: str | Path, *, agent_factory: AgentFactory,
             config: dict[str, Any], workers: int = 1, max_scenario_words: int | None = None,
             progress: bool = True, warmup: bool = True, inputs: str | None = None) -> RunResult:
    """Run ``arms`` × ``cases`` into ``out/per_question.jsonl``, skipping cases already finished there.

    With ``warmup``, each (generator, adapter) group first answers one case untimed, so lazily loaded models
    (index, embedder, LLM) are not billed to whichever case happens to run first.
    ``config`` (index, k, generator options, …) is saved in ``out/run.json``; resuming into a folder written
    with a different configuration is refused, since its records would not be comparable. ``inputs`` (the
    settings and the index's manifest, see :func:`records.inputs_fingerprint`) enters every record's key, so a
    stored result is reused only when complete and computed from the same case row, arm and inputs.
    """
    out = Path(out)
    claim_output_dir(out, "evaluate", legacy=(RUN,))
    run_file, rec_file = out / RUN, out / RECORDS
    if run_file.exists():
        previous = read_run_config(run_file)
        if previous != config:
            diff = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
            raise EvaluationError(f"{out}: holds results of a different configuration (differs in: "
                                  f"{', '.join(diff)}); use another --out or --overwrite")
    else:
        atomic_write(run_file, json.dumps(config, indent=2, ensure_ascii=False))
    inputs = inputs or ""
    digests = {case.id: case_hash(case) for case in cases}
    keys = {(arm.name, case.id): input_key(digests[case.id], arm, inputs) for case in cases for arm in arms}
    resume = plan_resume(load_records(rec_file), keys)
    kept = resume.kept
    if rec_file.exists():  # rewritten with only the reusable results: no stale, failed or cut-short rows
        atomic_write(rec_file, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    done = resume.done
    # Case-major: every arm answers case 1, then case 2, … so a run stopped early still compares all arms on the
    # cases it finished (rerun with a smaller --limit to report exactly those).
    jobs = [(arm, case) for case in cases for arm in arms if (arm.name, case.id) not in done]
    skipped = len(arms) * len(cases) - len(jobs)
    if skipped:
        log.info("resuming: %d arm×case results already in %s", skipped, rec_file)
    if resume.recomputed:
        log.warning("recomputing %s stored arm×case results in %s", resume.describe(), rec_file)
    if jobs:  # the summary of an earlier run no longer describes this folder until this run finishes
        for name in (METRICS, "report.md"):
            (out / name).unlink(missing_ok=True)
    agents = {arm.name: agent_factory(arm) for arm in arms}
    if warmup and jobs:
        _warm_up(agents, [arm for arm, _ in jobs], jobs[0][1])
    write_lock = threading.Lock()
    failed = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="evaluate", unit="case")

    def work(arm: Arm, case: Case) -> list[dict[str, Any]]:
        return evaluate_case(agents[arm.name], arm, case, max_scenario_words=max_scenario_words)

    with rec_file.open("a", encoding="utf-8") as fh:
        def write(rows: list[dict[str, Any]]) -> None:
            nonlocal failed
            key = keys[(rows[0]["arm"], rows[0]["case_id"])]
            rows = [{**r, "input_key": key} for r in rows]
            with write_lock:
                # One write per case: a kill leaves at most one case cut short, which the next run recomputes.
                fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
                fh.flush()
                kept.extend(rows)
                failed += rows[0]["error"] is not None
                if bar is not None:
                    bar.set_postfix_str(rows[0]["arm"])
                    bar.update(1)

        try:
            if workers <= 1:
                for arm, case in jobs:
                    write(work(arm, case))
            else:
                pool = ThreadPoolExecutor(max_workers=workers)
                try:
                    futures = [pool.submit(work, arm, case) for arm, case in jobs]
                    for fut in as_completed(futures):
                        write(fut.result())
                finally:
                    # On Ctrl-C, queued cases are dropped instead of run to the end; running ones finish.
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if bar is not None:
                bar.close()
    return RunResult(kept, ran=len(jobs), skipped=skipped, failed=failed, recomputed=resume.describe())
