"""``clinrag ui``: a web page for clinicians, on Gradio.

Paste a case (scenario and questions), upload a case file or pick a case from one; choose strategy, generator and
model; watch each step finish (the served graph's node updates, streamed); read the summary and every answer with
its sources, each expandable to the passage text; tick "compare" to run a second strategy side by side.

It runs the same graph LangGraph Server serves (:mod:`clinrag.serving.langgraph_app`), in-process, with the same
cached components. Private by default: it binds 127.0.0.1, never creates a share link, Gradio's analytics are off
(unless ``GRADIO_ANALYTICS_ENABLED`` says otherwise), the theme uses local fonts (no font CDN), and no case text is
logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from clinrag.agent.settings import AgentSettings
from clinrag.core import defaults
from clinrag.core.cases import Case, load_cases, parse_case, split_numbered
from clinrag.core.errors import ClinragError
from clinrag.retrieval.options import RetrievalMode

from .langgraph_app import default_index, make_graph
from .ui_render import CSS, RunView

#: Label of the dropdown entry that means "what is typed in the boxes".
PASTED = "(pasted case)"
RETRIEVAL_MODES = tuple(m.value for m in RetrievalMode)  # the one list the CLI and the agent accept


def parse_questions(text: str) -> list[str]:
    """Questions from the box: numbered ("1. … 2. …", "Q1: …") or one per line."""
    parts = split_numbered(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines if len(parts) <= 1 and len(lines) > 1 else parts


def form_case(case_id: str | None, scenario: str, questions: str, picked: dict[str, Any] | None) -> Case:
    """The case to answer: the picked one with the boxes' (possibly edited) scenario and questions, or a new one."""
    raw = dict(picked or {})
    raw.update(id=case_id or "pasted-case", clinical_scenario=scenario, questions=parse_questions(questions))
    if not picked or raw.get("questions") != picked.get("questions"):
        for name in ("answers", "evidence", "options", "answer_key", "answer_tolerance"):
            raw.pop(name, None)  # references of other questions would misalign
    return parse_case(raw, source="the form", kind="form")


def questions_text(questions: Sequence[str]) -> str:
    return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))


def run_strategies(case: Case, settings: Sequence[AgentSettings]) -> Iterator[list[RunView]]:
    """Run the served graph once per settings (one after the other: they share one CPU and one cached model),
    yielding the views after every step."""
    graph, views = make_graph(), [RunView(s.strategy) for s in settings]
    for view, setting in zip(views, settings):
        try:
            for update in graph.stream(case.model_dump(mode="json"), context=setting, stream_mode="updates"):
                view.add(update)
                yield views
        except ClinragError as exc:
            view.error = str(exc)
            yield views


def _theme() -> Any:
    import gradio as gr

    # System fonts: Gradio's default theme would fetch Inter from Google Fonts on every page load.
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def build_ui(*, index: str | None = None, cases: Sequence[Case] = (), strategy: str = defaults.STRATEGY,
             generator: str = defaults.GENERATOR, model: str | None = None, k: int = defaults.TOP_K,
             mode: str = defaults.RETRIEVAL_MODE) -> Any:
    """The Gradio page; ``cases`` fill the case picker (the first is shown)."""
    import gradio as gr
    from clinrag.plugins.generators import generators
    from clinrag.plugins.strategies import strategies

    preloaded = {c.id: c.model_dump(mode="json", exclude_none=True) for c in cases}
    first = next(iter(preloaded.values()), None)
    strategy_names, generator_names = strategies.names(), generators.names()

    with gr.Blocks(title="clinrag", analytics_enabled=False) as page:
        known = gr.State(preloaded)
        gr.Markdown("## clinrag · answer a clinical case\nEach answer lists the passages it rests on; open a source "
                    "to read the passage. Answers come from retrieval over the index below — check them.")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    picker = gr.Dropdown([PASTED, *preloaded], value=first["id"] if first else PASTED,
                                         label="Case", elem_id="case-picker", scale=3)
                    upload = gr.File(label="Upload a case file (.jsonl, .json, .csv)", type="filepath",
                                     file_types=[".jsonl", ".json", ".csv"], elem_id="case-upload", scale=2)
                scenario = gr.Textbox(first["clinical_scenario"] if first else "", lines=5, label="Clinical scenario",
                                      elem_id="scenario")
                questions = gr.Textbox(questions_text(first["questions"]) if first else "", lines=5,
                                       label="Questions (one per line, or numbered 1. 2. …)", elem_id="questions")
            with gr.Column(scale=2):
                strategy_a = gr.Dropdown(strategy_names, value=strategy, label="Strategy", elem_id="strategy")
                generator_in = gr.Dropdown(generator_names, value=generator, label="Generator", elem_id="generator")
                model_in = gr.Textbox(model or "", label="Model (hf/openai: hub id, folder or .gguf)",
                                      elem_id="model")
                with gr.Row():
                    k_in = gr.Slider(1, 20, value=k, step=1, label="Passages per sub-question (k)", elem_id="k")
                    mode_in = gr.Radio(list(RETRIEVAL_MODES), value=mode, label="Retrieval", elem_id="mode")
                index_in = gr.Textbox(index or default_index(), label="Index folder", elem_id="index")
                with gr.Row():
                    compare = gr.Checkbox(False, label="Compare with a second strategy", elem_id="compare")
                    strategy_b = gr.Dropdown(strategy_names, value=defaults.NO_TRANSLATION_STRATEGY,
                                             label="Second strategy", elem_id="strategy-b")
                run = gr.Button("Answer the case", variant="primary", elem_id="run")
        with gr.Row():
            with gr.Column():
                progress_a = gr.HTML(elem_id="progress-a")
                result_a = gr.HTML(elem_id="result-a")
            with gr.Column(visible=False) as column_b:
                progress_b = gr.HTML(elem_id="progress-b")
                result_b = gr.HTML(elem_id="result-b")

        def on_upload(path: str | None, known_cases: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            if not path:
                return gr.update(), known_cases
            try:
                loaded = load_cases(path)
            except ClinragError as exc:
                raise gr.Error(str(exc).replace(str(path), Path(path).name)) from None
            known_cases = {**known_cases, **{c.id: c.model_dump(mode="json", exclude_none=True) for c in loaded}}
            return gr.update(choices=[PASTED, *known_cases], value=loaded[0].id), known_cases

        def on_pick(case_id: str, known_cases: dict[str, Any]) -> tuple[Any, Any]:
            if case_id not in known_cases:
                return gr.update(), gr.update()
            raw = known_cases[case_id]
            return raw["clinical_scenario"], questions_text(raw["questions"])

        def on_run(case_id: str, scenario_text: str, questions_box: str, known_cases: dict[str, Any], a: str,
                   gen: str, model_path: str, k_value: float, mode_value: str, index_dir: str, both: bool,
                   b: str) -> Iterator[tuple[Any, ...]]:
            try:
                picked = known_cases.get(case_id)
                case = form_case(case_id if picked else None, scenario_text, questions_box, picked)
                base = AgentSettings(index=index_dir.strip() or None, generator=gen, model=model_path.strip() or None,
                                     k=int(k_value), mode=mode_value)
            except ClinragError as exc:
                raise gr.Error(str(exc)) from None
            settings = [AgentSettings(**{**base.to_json(), "strategy": a})]
            if both:
                settings.append(AgentSettings(**{**base.to_json(), "strategy": b}))
            for views in run_strategies(case, settings):
                done = [v.response is not None or v.error is not None for v in views]
                out = [views[0].progress_html(not done[0]), views[0].result_html()]
                out += ([views[1].progress_html(not done[1]), views[1].result_html()] if both else ["", ""])
                yield (*out, gr.update(visible=both))

        upload.upload(on_upload, [upload, known], [picker, known])
        picker.change(on_pick, [picker, known], [scenario, questions])
        run.click(on_run, [picker, scenario, questions, known, strategy_a, generator_in, model_in, k_in, mode_in,
                           index_in, compare, strategy_b],
                  [progress_a, result_a, progress_b, result_b, column_b])
    return page


def launch(*, host: str = defaults.SERVE_HOST, port: int = defaults.UI_PORT, index: str | None = None,
           case_files: Sequence[str | Path] = (), block: bool = True, **options: Any) -> Any:
    """Load the case files (a bad one fails here, before the port opens), build the page and serve it: until
    interrupted, or (``block=False``) in the background, returning the page (``page.close()`` stops it)."""
    # Before gradio is imported: it reads this once. A user who exports it keeps their choice.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    cases = [case for path in case_files for case in load_cases(path)]
    page = build_ui(index=index, cases=cases, **options)
    try:
        page.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False, mcp_server=False,
            theme=_theme(), css=CSS, footer_links=[], show_error=True, prevent_thread_lock=not block)
    except OSError as exc:
        raise ClinragError(f"cannot listen on {host}:{port}: {exc}") from exc
    return page
