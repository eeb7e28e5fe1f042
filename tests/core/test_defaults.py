"""Every shared default lives in ``clinrag.core.defaults``: no module repeats one as a literal, so editing a constant
there changes it everywhere (library signatures, plugin options and CLI option defaults alike)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from clinrag.core import defaults

REPO = Path(__file__).resolve().parents[2]
SCANNED = ["core", "retrieval", "plugins", "agent", "evaluation", "cli", "serving", "benchmarks"]
# Owned by other parts of issue #14 (model loading, prompts, fine-tuning); they move to the constants there.
NOT_YET = {"core/defaults.py", "core/prompts.py", "cli/finetune.py", "cli/vocab.py"}
NOT_YET_DIRS = ("core/models/",)

# A parameter (or field, or CLI option) of this name whose default is a literal equal to the constant repeats it.
PARAMETERS = {
    "rrf_k": "RRF_K", "max_new_tokens": "MAX_NEW_TOKENS", "k": "TOP_K", "strategy": "STRATEGY",
    "baseline_strategy": "STRATEGY", "generator": "GENERATOR", "mode": "RETRIEVAL_MODE",
    "retrieval_mode": "RETRIEVAL_MODE", "answer_mode": "ANSWER_MODE", "model": "DEFAULT_MODEL",
    "embedder": "DEFAULT_EMBEDDER", "fusion": "FUSION", "n_resamples": "BOOTSTRAP_RESAMPLES",
    "resamples": "BOOTSTRAP_RESAMPLES", "max_scenario_words": "MAX_SCENARIO_WORDS", "batch_size": "EMBED_BATCH_SIZE",
    "device": "EMBED_DEVICE", "host": "SERVE_HOST", "port": "SERVE_PORT", "base_url": "SERVER_BASE_URL",
    "max_batch": "SERVE_MAX_BATCH", "default_max_tokens": "SERVE_MAX_TOKENS", "extra": "SUBSET_DISTRACTORS",
}
# Values distinctive enough that any literal copy, wherever it appears, is a duplicate.
DISTINCTIVE = {defaults.DEFAULT_MODEL, defaults.DEFAULT_EMBEDDER, defaults.SERVER_BASE_URL,
               *defaults.DEFAULT_EMBEDDER_ALIASES[1:2]}


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel not in NOT_YET and not rel.startswith(NOT_YET_DIRS):
                files.append(path)
    return files


def _literal(node: ast.AST | None) -> object:
    """The literal a default is, looking through ``typer.Option(<literal>, ...)``; a sentinel when not literal."""
    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("Option", "Argument") and node.args:
        node = node.args[0]
    return node.value if isinstance(node, ast.Constant) else inspect.Parameter.empty


def _parameter_defaults(tree: ast.AST):
    """(name, default node, line) of every function parameter and annotated field (dataclass, model) with a value."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            yield from ((a.arg, d, d.lineno) for a, d in zip(positional[len(positional) - len(args.defaults):],
                                                               args.defaults))
            yield from ((a.arg, d, d.lineno) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
              and "ClassVar" not in ast.unparse(node.annotation)):  # a plugin's ClassVar is its choice, not a default
            yield node.target.id, node.value, node.lineno


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_no_module_repeats_a_shared_default():
    repeated = []
    for path in scanned_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(REPO).as_posix()
        for name, node, line in _parameter_defaults(tree):
            constant = PARAMETERS.get(name)
            value = _literal(node)
            if constant and value == getattr(defaults, constant) and type(value) is type(getattr(defaults, constant)):
                repeated.append(f"{rel}:{line}: {name}={value!r} (use defaults.{constant})")
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in DISTINCTIVE and id(node) not in docs:
                repeated.append(f"{rel}:{node.lineno}: literal {node.value!r}")
    assert not repeated, "shared defaults repeated as literals:\n" + "\n".join(repeated)


def test_the_scan_sees_the_modules_it_guards():
    names = {p.relative_to(REPO).as_posix() for p in scanned_files()}
    assert {"retrieval/fusion.py", "plugins/strategies/rag_fusion.py", "cli/answer.py", "serving/openai_server.py",
            "agent/run.py", "evaluation/pipeline.py"} <= names
    assert not names & {"cli/finetune.py", "core/defaults.py"}


@pytest.mark.parametrize("source", [
    "def rrf(lists, *, rrf_k: int = 60): ...",
    "def answer(k: int = typer.Option(5, '-k')): ...",
    "class T:\n    fusion: str = 'union'\n",
    "MODEL = 'Qwen/Qwen2.5-0.5B-Instruct'\n",
])
def test_the_scan_catches_a_repeated_literal(source):
    """The guard itself: each kind of duplicate the issue found is flagged."""
    tree = ast.parse(source)
    flagged = [n for n, d, _ in _parameter_defaults(tree)
               if PARAMETERS.get(n) and _literal(d) == getattr(defaults, PARAMETERS[n])]
    flagged += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in DISTINCTIVE]
    assert flagged


def test_library_signatures_read_the_constants():
    from clinrag.agent.run import build_agent
    from clinrag.plugins.generators.hf import HFGenerator
    from clinrag.plugins.generators.openai_compat import OpenAIGenerator
    from clinrag.plugins.strategies.base import Translation
    from clinrag.plugins.strategies.rag_fusion import RagFusionStrategy
    from clinrag.plugins.strategies.step_back import StepBackStrategy
    from clinrag.retrieval.fusion import fuse, rrf
    from clinrag.retrieval.retriever import IndexRetriever
    from clinrag.serving.openai_server import ChatServer

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    for fn in (rrf, fuse, IndexRetriever, RagFusionStrategy, StepBackStrategy, Translation):
        assert default(fn, "rrf_k") == defaults.RRF_K
    assert RagFusionStrategy().rrf_k == StepBackStrategy().rrf_k == defaults.RRF_K
    for fn in (HFGenerator, OpenAIGenerator):
        assert default(fn, "max_new_tokens") == defaults.MAX_NEW_TOKENS
    assert default(HFGenerator, "model") == defaults.DEFAULT_MODEL
    assert default(OpenAIGenerator, "base_url") == defaults.SERVER_BASE_URL
    assert (default(build_agent, "strategy"), default(build_agent, "generator"), default(build_agent, "k"),
            default(build_agent, "retrieval_mode"), default(build_agent, "answer_mode")) == (
        defaults.STRATEGY, defaults.GENERATOR, defaults.TOP_K, defaults.RETRIEVAL_MODE, defaults.ANSWER_MODE)
    assert (default(ChatServer, "port"), default(ChatServer, "default_max_tokens")) == (
        defaults.SERVE_PORT, defaults.SERVE_MAX_TOKENS)


def test_cli_option_defaults_are_the_constants():
    from clinrag.cli.answer import answer
    from clinrag.cli.serve import serve

    def option_default(fn, name):
        return inspect.signature(fn).parameters[name].default.default

    assert option_default(answer, "k") == defaults.TOP_K
    assert option_default(answer, "strategy") == defaults.STRATEGY
    assert option_default(serve, "model") == defaults.DEFAULT_MODEL


def test_defaults_module_imports_nothing():
    """Read by the CLI at import time: it must stay a leaf (no clinrag module, no third-party library)."""
    tree = ast.parse(Path(defaults.__file__).read_text(encoding="utf-8"))
    imported = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [getattr(n, "module", None) for n in imported] == ["__future__"]
