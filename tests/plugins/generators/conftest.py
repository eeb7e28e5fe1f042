"""Generator tests decode with real SmolLM2: one torch thread each (see ``one_torch_thread``)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield
