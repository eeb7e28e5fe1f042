"""The graph LangGraph Server (``langgraph dev``/``langgraph up``), LangGraph Studio and the web page run.

Plain JSON in and out, so any LangGraph client can use it:

* **input**: the case object itself, in the documented case schema (:class:`~clinrag.core.cases.Case`:
  ``{"id", "clinical_scenario", "questions", ...}``);
* **output**: the response schema (:class:`~clinrag.agent.response.CaseResponse`: ``answers``, one per question,
  ``summary``, ``notes``, ``usage`` …);
* **context** (per run, or stored on an assistant): :class:`~clinrag.agent.settings.AgentSettings` as JSON
  (``{"strategy": "hyde", "k": 3, "generator": "hf", "model": "…"}``); every key is optional. With no ``index``
  the graph answers against ``$CLINRAG_INDEX`` or the demo index ``make demo`` builds
  (:data:`~clinrag.core.defaults.DEMO_INDEX`). Components are built once per setting and reused across runs
  (:func:`~clinrag.agent.settings.resolve_context`).

The nodes are the agent's own (``translate``, one ``retrieve`` per sub-question, ``answer``, ``summarize``,
``compose``), after a ``case`` node that validates the input and loads the components. LangGraph Server streams
only a graph's output keys, so each step also appends a small JSON record of what it did to the output's ``steps``
(sub-questions and their queries, the passages a branch retrieved, the answers): ``stream_mode="updates"`` then
shows every step to any client, and the web page draws its progress from the same records.
"""

from __future__ import annotations

import operator
import os
from dataclasses import replace
from functools import cache
from typing import Annotated, Any

from clinrag.agent.context import AnswerMode
from clinrag.agent.graph import add_agent_nodes
from clinrag.agent.response import CaseResponse
from clinrag.agent.settings import AgentSettings, resolve_context
from clinrag.agent.state import CaseState
from clinrag.core import defaults
from clinrag.core.cases import Case, parse_case
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from pydantic import Field
from typing_extensions import TypedDict

#: Environment variable naming the index served when a run's settings name none.
INDEX_ENV = "CLINRAG_INDEX"

#: What the ``case`` node reads: every field of the case schema, raw, so :func:`parse_case` (not LangGraph's
#: pydantic coercion) reports a bad input in one line naming the field.
CaseFields = TypedDict("CaseFields", {name: Any for name in Case.model_fields}, total=False)  # type: ignore[misc]


class ServedState(CaseState, total=False):
    """The agent's state plus ``steps``, appended by every node (parallel branches too, hence the reducer)."""

    steps: Annotated[list[dict[str, Any]], operator.add]


class ServedResponse(CaseResponse):
    """The graph's output: the response schema, plus what each step did, in the order the steps finished."""

    steps: list[dict[str, Any]] = Field(default_factory=list, description=(
        "One record per step: {'step': 'case'|'translate'|'summarize'|'retrieve'|'answer'|'whole_case', ...}"))


def default_index() -> str:
    return os.environ.get(INDEX_ENV) or defaults.DEMO_INDEX


def settings_of(context: Any) -> AgentSettings:
    """The run's settings: LangGraph passes an :class:`AgentSettings` (built from the run's JSON context), a
    dict, or nothing; a per-question run without an index gets :func:`default_index`."""
    settings = context if isinstance(context, AgentSettings) else AgentSettings.from_json(context)
    if settings.index is None and AnswerMode.parse(settings.answer_mode, option="answer_mode") is AnswerMode.per_question:
        settings = replace(settings, index=default_index())
    return settings


def load_case(state: CaseFields, runtime: Runtime[AgentSettings]) -> dict[str, Any]:
    """Validate the input case and build (or fetch from the cache) the components, before the parallel steps."""
    case = parse_case({k: v for k, v in state.items() if v is not None}, source="run input", kind="input")
    settings = settings_of(runtime.context)
    ctx = resolve_context(settings)
    step = {"step": "case", "case_id": case.id, "questions": case.n_questions, "index": settings.index,
            "strategy": ctx.strategy.name, "generator": ctx.generator.name, "k": ctx.k}
    return {"case": case, "steps": [step]}


def _passage(hit: Any) -> dict[str, Any]:
    return {"id": hit.id, "title": hit.passage.title, "score": round(float(hit.score), 4)}


def step_record(name: str, update: dict[str, Any]) -> dict[str, Any]:
    """What node ``name`` did, as plain JSON (ids, titles and texts; never whole objects)."""
    record: dict[str, Any] = {"step": name}
    if "sub_questions" in update:
        record["sub_questions"] = [{"id": sq.id, "question": sq.question_index + 1, "text": sq.text,
                                    "queries": [q.text for q in sq.queries]} for sq in update["sub_questions"]]
    if name == "retrieve":
        ((sub_question, hits),) = update["retrieved"].items()
        record.update(sub_question=sub_question, passages=[_passage(h) for h in hits])
    if "sub_answers" in update:
        record["answers"] = {sid: gen.text.strip() for sid, gen in update["sub_answers"].items()}
    if "summary_generation" in update:
        record["summary"] = update["summary_generation"].text.strip()
    if update.get("step_notes"):
        record["notes"] = list(update["step_notes"])
    return record


def _with_components(name: str, node: Any) -> Any:
    """The agent's node, given the :class:`~clinrag.agent.context.AgentContext` its run's settings resolve to;
    ``compose`` writes the response's fields as the graph's output."""

    def run(state: dict[str, Any], runtime: Runtime[AgentSettings]) -> Any:
        update = node(state, runtime.override(context=resolve_context(settings_of(runtime.context))))
        if name == "compose":
            return update["response"].model_dump(mode="json")
        return {**update, "steps": [step_record(name, update)]}

    run.__name__ = run.__qualname__ = name
    return run


def build_served_graph() -> Any:
    """Case JSON in, response JSON out, :class:`AgentSettings` as the context schema."""
    builder = StateGraph(ServedState, context_schema=AgentSettings, input_schema=Case, output_schema=ServedResponse)
    builder.add_node("case", load_case, input_schema=CaseFields)
    builder.add_edge(START, "case")
    add_agent_nodes(builder, after="case", wrap=_with_components)
    return builder.compile(name="clinrag")


@cache
def make_graph() -> Any:
    """The graph factory ``langgraph.json`` names. Compiled on first use (never at import) and reused: the
    components themselves are cached by settings in :func:`~clinrag.agent.settings.resolve_context`."""
    return build_served_graph()
