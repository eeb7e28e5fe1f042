"""Generator tests run real SmolLM2 decoding on a small shared CPU box: one intra-op thread avoids the
spin-wait collapse of two OpenMP threads competing with other processes (measured: ~10× faster there)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
