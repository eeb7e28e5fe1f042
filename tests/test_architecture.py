"""The architecture as tests: the import-linter contracts in pyproject.toml hold, every package sits in a
layer, the contracts really catch what they promise (upward imports, lazy ones included, and cycles), no
module grows past the size a reader takes in at once, and docs/architecture.md's where-is table names symbols
that exist.
"""

from __future__ import annotations

import copy
import importlib
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import tomllib
from importlinter import api as importlinter_api
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
CONTRACT_TYPES = {"layers": LayersContract, "forbidden": ForbiddenContract, "acyclic_siblings": AcyclicSiblingsContract}


def _config() -> dict:
    return importlinter_api.read_configuration(str(PYPROJECT))


def _root_packages() -> list[str]:
    return list(_config()["session_options"]["root_packages"])


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*_root_packages(), cache_dir=None)


def _broken_contracts(graph: grimp.ImportGraph) -> set[str]:
    """Ids of the pyproject contracts that ``graph`` breaks."""
    config = _config()
    broken = set()
    for options in config["contracts_options"]:
        contract = CONTRACT_TYPES[options["type"]](
            name=options["name"], session_options=config["session_options"], contract_options=options
        )
        if not contract.check(copy.deepcopy(graph), verbose=False).kept:
            broken.add(options["id"])
    return broken


def test_import_contracts_are_kept():
    # The CLI, not the Python API, so a failure prints import-linter's own report: importer -> imported (l.N).
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--config", str(PYPROJECT), "--no-cache", "--no-logo"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_is_in_exactly_one_layer():
    # import-linter's `exhaustive` needs a container package, and `clinrag` is a namespace (none): check here
    # that a new top-level folder cannot escape the contracts by not being listed.
    installed = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"]
    top_level = {".".join(name.split(".")[:2]) for name in installed}
    assert set(_root_packages()) == top_level
    layers = next(c for c in _config()["contracts_options"] if c["type"] == "layers")["layers"]
    in_layers = [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]
    assert sorted(in_layers) == sorted(top_level)


def test_the_real_graph_breaks_no_contract():
    # Same verdict as the CLI run above, through the path the tests below use to inject violations.
    assert _broken_contracts(_graph()) == set()


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("clinrag.core.errors", "clinrag.agent.graph"),          # foundations reaching up
        ("clinrag.retrieval.quality", "clinrag.evaluation.scoring"),  # a real one the re-layering removed
        ("clinrag.finetune.data", "clinrag.evaluation.scoring"),  # siblings must stay independent
        ("clinrag.serving.openai_server", "clinrag.cli.serve"),   # the server never needs the CLI
    ],
)
def test_an_upward_import_breaks_the_layers(importer, imported):
    graph = _graph()
    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="import x")
    assert _broken_contracts(graph) == {"layers"}


def test_light_core_modules_may_not_import_core_models():
    graph = _graph()
    graph.add_import(importer="clinrag.core.types", imported="clinrag.core.models.gguf",
                     line_number=1, line_contents="import x")
    # core.models itself imports light core modules, so such an import is a cycle too; the named contract must break.
    assert "core-models-on-top" in _broken_contracts(graph)


def test_a_cycle_inside_a_layer_breaks_the_acyclic_contract():
    # decomposition <-> expansion was a real cycle, hidden behind a function-level import.
    graph = _graph()
    graph.add_import(importer="clinrag.plugins.strategies.decomposition",
                     imported="clinrag.plugins.strategies.expansion",
                     line_number=1, line_contents="import x")
    assert graph.direct_import_exists(importer="clinrag.plugins.strategies.expansion",
                                      imported="clinrag.plugins.strategies.decomposition")
    assert _broken_contracts(graph) == {"acyclic"}


def test_function_level_imports_are_in_the_graph(tmp_path, monkeypatch):
    # The contracts are only as good as the graph: an import inside a function body must be an edge.
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def later():\n    from lazypkg import high\n    return high\n")
    (package / "high.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("lazypkg", cache_dir=None)
    details = graph.get_import_details(importer="lazypkg.low", imported="lazypkg.high")
    # (grimp's `is_lazy` means PEP 810's `lazy import` statement, not a function-level import.)
    assert [(d["line_number"], d["line_contents"]) for d in details] == [(2, "from lazypkg import high")]


# --- module size ------------------------------------------------------------------------------------------

MAX_LINES = 400
PACKAGE_FOLDERS = ("core", "retrieval", "plugins", "agent", "evaluation", "finetune", "cli", "serving")
# Empty on purpose: a module over the limit is split, not listed.
OVERSIZED_ALLOWED: set[str] = set()


def _line_counts() -> dict[str, int]:
    return {
        path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for folder in PACKAGE_FOLDERS
        for path in sorted((REPO / folder).rglob("*.py"))
    }


def test_no_module_is_over_the_size_limit():
    oversized = {path: n for path, n in _line_counts().items() if n > MAX_LINES and path not in OVERSIZED_ALLOWED}
    assert oversized == {}, f"split these modules (limit {MAX_LINES} lines): {oversized}"


def test_the_size_allow_list_names_only_modules_that_need_it():
    # Once a listed module is split, its entry must go, or the allow-list would silently cover a regrowth.
    counts = _line_counts()
    stale = sorted(path for path in OVERSIZED_ALLOWED if counts.get(path, 0) <= MAX_LINES)
    assert stale == [], f"remove from OVERSIZED_ALLOWED: {stale}"


# --- docs/architecture.md's where-is table ------------------------------------------------------------------

ARCHITECTURE_MD = REPO / "docs" / "architecture.md"
_ROW = re.compile(r"^\|\s*(?P<behaviour>[^|]+?)\s*\|\s*`(?P<module>clinrag(?:\.\w+)+)::(?P<symbol>\w+(?:\.\w+)*)`\s*\|\s*$")


def _where_is_rows() -> list[tuple[str, str, str]]:
    text = ARCHITECTURE_MD.read_text(encoding="utf-8")
    section = text.split("## Where is", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")][2:]  # past the header and rule
    rows = []
    for line in table:
        match = _ROW.match(line)
        assert match, f"docs/architecture.md: not a `| behaviour | `module::symbol` |` row: {line!r}"
        rows.append((match["behaviour"], match["module"], match["symbol"]))
    return rows


def test_where_is_table_is_large_and_unambiguous():
    rows = _where_is_rows()
    assert len(rows) >= 20
    behaviours = [b for b, _, _ in rows]
    assert len(set(behaviours)) == len(behaviours), "a behaviour listed twice"


@pytest.mark.parametrize(("behaviour", "module", "symbol"), _where_is_rows(), ids=lambda v: str(v)[:40])
def test_where_is_names_a_symbol_that_exists(behaviour, module, symbol):
    target = importlib.import_module(module)
    for part in symbol.split("."):
        assert hasattr(target, part), f"{behaviour!r}: {module} has no {symbol} (docs/architecture.md)"
        target = getattr(target, part)
