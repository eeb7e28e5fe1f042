"""``clinrag graph``: Mermaid text, and a PNG drawn on this machine with the network cut (no web renderer)."""

from __future__ import annotations

import socket

import pytest
from clinrag.cli import main
from clinrag.cli.graph import layout


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_png_is_drawn_offline(tmp_path, no_network, capsys):
    from matplotlib.image import imread

    out = tmp_path / "graph.png"
    assert main(["graph", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(str(out)).shape[:2]
    assert width > 300 and height > 500  # seven layers top-down
    err = capsys.readouterr().err
    assert err.strip() == f"wrote {out}" and "Traceback" not in err


def test_mermaid_text_and_unwritable_path(tmp_path, no_network, capsys):
    assert main(["graph", "--out", str(tmp_path / "graph.mmd")]) == 0
    assert "graph TD" in (tmp_path / "graph.mmd").read_text() and "retrieve" in (tmp_path / "graph.mmd").read_text()
    assert main(["graph", "--out", str(tmp_path / "missing" / "graph.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err and len(err.strip().splitlines()) == 2


def test_layout_layers_follow_edges_and_branches_get_columns():
    from clinrag.agent.graph import build_graph

    drawn = build_graph().get_graph()
    pos = layout(list(drawn.nodes), [(e.source, e.target) for e in drawn.edges])
    assert all(pos[e.target][1] > pos[e.source][1] for e in drawn.edges)
    rows: dict[int, list[float]] = {}
    for x, level in pos.values():
        rows.setdefault(level, []).append(x)
    assert all(b - a >= 1 for xs in rows.values() for a, b in zip(sorted(xs), sorted(xs)[1:]))
    # summarize -> compose runs straight down a column that retrieve and answer stay out of
    assert pos["summarize"][0] == pos["compose"][0] != pos["retrieve"][0] == pos["answer"][0]
    assert layout(["a", "b"], [("a", "b"), ("b", "a")]) == {"a": (0.0, 0), "b": (0.0, 1)}  # a cycle still lays out
