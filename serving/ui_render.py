"""What the web page shows, as HTML built from the served graph's updates: pure functions, no Gradio.

Every text that comes from a case, a model or the corpus is escaped: a passage or an answer can never inject markup
into the page. Sources are ``<details>`` elements, so a clinician opens the passage text under the answer it backs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

#: What each step is called on the page.
STEP_LABELS = {
    "case": "Case read; index and models ready",
    "translate": "Questions translated into sub-questions",
    "summarize": "Scenario summarised",
    "retrieve": "Passages retrieved",
    "answer": "Sub-questions answered",
    "whole_case": "Whole case answered in one call",
    "compose": "Response composed",
}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{_e(p)}</p>" for p in text.split("\n\n") if p.strip()) or "<p><em>(no answer)</em></p>"


def step_detail(record: dict[str, Any]) -> str:
    """One line on what a step did, from its JSON record (``steps`` in the served graph's updates)."""
    step = record.get("step")
    if step == "case":
        return (f"{record['questions']} questions · strategy {record['strategy']} · generator {record['generator']}"
                f" · k={record['k']}")
    if step == "translate":
        subs = record.get("sub_questions", [])
        return f"{len(subs)} sub-question{'s' if len(subs) != 1 else ''}"
    if step == "retrieve":
        ids = ", ".join(p["id"] for p in record.get("passages", []))
        return f"{record['sub_question']}: {ids or 'nothing found'}"
    if step in ("answer", "whole_case"):
        return f"{len(record.get('answers', {}))} answer(s)"
    return ""


@dataclass
class RunView:
    """One strategy's run as the page shows it, filled update by update."""

    strategy: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (label, detail), in the order they finished
    passages: dict[str, Any] = field(default_factory=dict)      # passage id → Passage (its text for the sources)
    response: dict[str, Any] | None = None
    error: str | None = None

    def add(self, update: dict[str, Any]) -> None:
        """Take one ``stream_mode="updates"`` chunk of the served graph (run in-process)."""
        for name, values in update.items():
            values = values or {}
            for hits in (values.get("retrieved") or {}).values():
                for hit in hits:
                    self.passages.setdefault(hit.id, hit.passage)
            if name == "compose":
                self.response = values
                self.steps.append((STEP_LABELS[name], f"{len(values.get('answers', []))} answers"))
                continue
            for record in values.get("steps", []):
                self.steps.append((STEP_LABELS.get(record["step"], record["step"]), step_detail(record)))

    def progress_html(self, running: bool) -> str:
        items = "".join(f'<li class="step done">✓ {_e(label)}<span class="detail">{_e(detail)}</span></li>'
                        for label, detail in self.steps)
        if self.error:
            items += f'<li class="step error">✗ {_e(self.error)}</li>'
        elif running:
            items += '<li class="step running">… working</li>'
        return (f'<div class="clinrag-progress" data-strategy="{_e(self.strategy)}">'
                f"<h4>Progress · {_e(self.strategy)}</h4><ol>{items}</ol></div>")

    def result_html(self) -> str:
        return render_response(self.response, self.passages) if self.response else ""


def _source(source: dict[str, Any], passages: dict[str, Any]) -> str:
    passage = passages.get(source["id"])
    text = _paragraphs(passage.text) if passage is not None else "<p><em>(passage text not available)</em></p>"
    title = f" — {_e(source['title'])}" if source.get("title") else ""
    return (f'<details class="source" data-id="{_e(source["id"])}"><summary><code>{_e(source["id"])}</code>{title}'
            f' <span class="score">score {float(source.get("score", 0.0)):.3f}</span></summary>'
            f'<div class="passage">{text}</div></details>')


def render_response(response: dict[str, Any], passages: dict[str, Any]) -> str:
    """The summary, then each answer with its sources expandable to the passage text, then notes and usage."""
    head = f'<div class="clinrag-result" data-case="{_e(response["case_id"])}" data-strategy="{_e(response["strategy"])}">'
    parts = [head,
             f'<section class="summary"><h3>Summary</h3>{_paragraphs(response["summary"])}</section>',
             '<section class="answers"><h3>Answers</h3>']
    for qa in response["answers"]:
        sources = "".join(_source(s, passages) for s in qa["sources"])
        parts.append(f'<article class="answer" data-index="{qa["index"]}"><h4>{qa["index"]}. {_e(qa["question"])}'
                     f'</h4><div class="text">{_paragraphs(qa["answer"])}</div>'
                     f'<div class="sources"><span class="label">Sources ({len(qa["sources"])})</span>{sources}</div>'
                     "</article>")
    parts.append("</section>")
    if response.get("notes"):
        parts.append('<section class="notes"><ul>' + "".join(f"<li>{_e(n)}</li>" for n in response["notes"])
                     + "</ul></section>")
    u = response.get("usage", {})
    parts.append(f'<p class="usage">strategy {_e(response["strategy"])} · generator {_e(response["generator"])} · '
                 f'{u.get("llm_calls", 0)} LLM calls · {u.get("prompt_tokens", 0) + u.get("completion_tokens", 0)}'
                 f' tokens · {float(u.get("seconds", 0.0)):.2f} s</p></div>')
    return "".join(parts)


CSS = """
.clinrag-progress ol { list-style: none; padding-left: 0; margin: 0; max-height: 12em; overflow-y: auto; }
.clinrag-progress .step { padding: 2px 0; }
.clinrag-progress .detail { color: #666; margin-left: .6em; font-size: .9em; }
.clinrag-progress .error { color: #b00020; }
.clinrag-result .answer { border-top: 1px solid #ddd; padding-top: .4em; margin-top: .6em; }
.clinrag-result details.source { margin: .2em 0 .2em 1em; }
.clinrag-result details.source summary { cursor: pointer; }
.clinrag-result .passage { margin: .3em 0 .6em 1em; padding: .4em .6em; background: #f6f7f9; border-radius: 4px;
                           font-size: .92em; }
.clinrag-result .score, .clinrag-result .usage, .clinrag-result .label { color: #666; font-size: .9em; }
"""
