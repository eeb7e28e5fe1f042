"""The wheel installs one top-level name, ``clinrag``; generic names like ``agent`` are not importable."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_wheel_exposes_only_clinrag(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("clinrag-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("clinrag-")}
    assert top == {"clinrag"}
    for sub in ("core", "core/models", "retrieval", "plugins", "plugins/strategies", "plugins/generators", "agent",
                "evaluation", "finetune", "cli", "serving"):
        assert f"clinrag/{sub}/__init__.py" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[clinrag.strategies]" in entry_points and "[clinrag.generators]" in entry_points


def test_installed_environment_imports_clinrag_not_agent(tmp_path):
    # Run outside the repo so the source folders are not on sys.path.
    code = ("import importlib.util as u, clinrag.agent.graph, clinrag.plugins.registry\n"
            "print([n for n in ('agent', 'plugins', 'retrieval', 'finetune', 'core', 'cli', 'serving') if u.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
