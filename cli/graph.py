"""``clinrag graph``: draw the agent graph as Mermaid text, or as a PNG/SVG/PDF rendered on this machine.

LangGraph's ``draw_mermaid_png`` sends the graph to a web renderer (mermaid.ink) and fails offline with a chain of
tracebacks; its ``draw_png`` needs Graphviz and pygraphviz. The picture here is drawn with matplotlib, already a
dependency: nodes in layers by their longest path from ``__start__`` (top-down, as Mermaid's ``graph TD``), each
placed under the mean of its parents so a case's branches run in separate columns; conditional edges dashed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

RENDERED = {".png", ".svg", ".pdf"}
_FILL = {"__start__": "#ffffff", "__end__": "#bfb6fc"}  # Mermaid's look: start hollow, end filled
_DEFAULT_FILL = "#f2f0ff"


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[float, int]]:
    """``{node: (x, layer)}``: layer = longest path from a root (edges that close a cycle ignored), x spread so
    that nodes of one layer are at least 1 apart and each sits as near the mean x of its parents as it can."""
    children: dict[str, list[str]] = {n: [] for n in nodes}
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    state: dict[str, int] = {}
    order: list[str] = []

    def visit(n: str) -> None:  # depth-first topological order; a grey node reached again is a back edge
        state[n] = 1
        for m in children[n]:
            if state.get(m) is None:
                visit(m)
        state[n] = 2
        order.append(n)

    forward = [(a, b) for a, b in edges if a in children and b in children and a != b]
    for a, b in forward:
        children[a].append(b)
    for n in nodes:
        if n not in state:
            visit(n)
    order.reverse()
    rank = {n: i for i, n in enumerate(order)}
    for a, b in forward:
        if rank[a] < rank[b]:
            parents[b].append(a)
    layer = dict.fromkeys(nodes, 0)
    for n in order:
        for p in parents[n]:
            layer[n] = max(layer[n], layer[p] + 1)
    x: dict[str, float] = {}
    for level in range(max(layer.values(), default=-1) + 1):
        row = [n for n in nodes if layer[n] == level]
        wanted = {n: sum(x[p] for p in parents[n]) / len(parents[n]) if parents[n] else 0.0 for n in row}
        row.sort(key=lambda n: wanted[n])  # stable: ties keep the graph's own node order
        placed: list[float] = []
        for n in row:
            placed.append(max(wanted[n], placed[-1] + 1) if placed else wanted[n])
        shift = sum(wanted.values()) / len(row) - sum(placed) / len(row)  # the row keeps its parents' centre
        x.update({n: p + shift for n, p in zip(row, placed)})
    return {n: (x[n], layer[n]) for n in nodes}


def render(graph: Any, out: Path) -> None:
    """Draw a ``langchain_core`` graph (``.nodes``, ``.edges`` with ``.conditional``) to ``out`` with matplotlib."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    names = list(graph.nodes)
    edges = [(e.source, e.target, bool(e.conditional), e.data) for e in graph.edges]
    pos = layout(names, [(a, b) for a, b, *_ in edges])
    xs, layers = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    width, height = max(xs) - min(xs) + 2, max(layers) + 1
    fig = Figure(figsize=(max(4.0, 2.2 * width), 1.1 * height + 0.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(-height + 0.4, 0.6)
    ax.axis("off")
    box_w, box_h = 0.8, 0.36
    for name, (x, level) in pos.items():
        ax.add_patch(FancyBboxPatch((x - box_w / 2, -level - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.02,rounding_size=0.15", linewidth=1.2,
                                    edgecolor="#9370db", facecolor=_FILL.get(name, _DEFAULT_FILL)))
        ax.text(x, -level, name, ha="center", va="center", fontsize=10)
    for source, target, conditional, label in edges:
        (x0, l0), (x1, l1) = pos[source], pos[target]
        down = l1 > l0
        start = (x0, -l0 - box_h / 2) if down else (x0 + box_w / 2, -l0)
        end = (x1, -l1 + box_h / 2) if down else (x1 + box_w / 2, -l1)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops={"arrowstyle": "-|>", "color": "#333333", "linewidth": 1.0,
                                "linestyle": "--" if conditional else "-",
                                "connectionstyle": "arc3" if down else "arc3,rad=-0.5"})
        if label:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, str(label), fontsize=8, ha="center",
                    va="center", backgroundcolor="white")
    fig.savefig(out, dpi=150)


def graph(out: Path = typer.Option(None, "--out", help="Write a picture (.png, .svg, .pdf; drawn locally, offline) "
                                                       "or Mermaid text (any other name); prints Mermaid when omitted.")
          ) -> None:
    """Draw the agent graph."""
    from clinrag.agent.graph import build_graph
    from clinrag.core.errors import ClinragError

    drawable = build_graph().get_graph()
    if out is None:
        typer.echo(drawable.draw_mermaid())
        return
    try:
        if out.suffix.lower() in RENDERED:
            render(drawable, out)
        else:
            out.write_text(drawable.draw_mermaid(), encoding="utf-8")
    except OSError as exc:
        raise ClinragError(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("graph")(graph)
