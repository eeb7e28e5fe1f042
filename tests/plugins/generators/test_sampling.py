"""Sampling picks tokens by temperature and top-p, reproducibly for a seed; temperature 0 means greedy."""

from __future__ import annotations

import math

import pytest
import torch
from clinrag.plugins.generators.sampling import Sampler, make_sampler


def test_temperature_zero_is_greedy():
    assert make_sampler(0) is None and make_sampler(None, 0.5, 3) is None
    assert isinstance(make_sampler(0.7, None, 1), Sampler)


def test_seeded_draws_repeat_and_follow_the_distribution():
    logits = torch.tensor([0.0, math.log(3.0), -50.0])  # p = 0.25, 0.75, ~0
    a = [Sampler(1.0, seed=5).sample(logits) for _ in range(1)]
    s1, s2 = Sampler(1.0, seed=5), Sampler(1.0, seed=5)
    draws1 = [s1.sample(logits) for _ in range(4000)]
    assert draws1 == [s2.sample(logits) for _ in range(4000)] and a[0] == draws1[0]
    assert draws1 != [Sampler(1.0, seed=6).sample(logits) for _ in range(4000)]
    assert abs(draws1.count(1) / 4000 - 0.75) < 0.03 and 2 not in draws1


def test_top_p_keeps_the_nucleus_only():
    logits = torch.tensor([math.log(0.5), math.log(0.3), math.log(0.2)])
    sampler = Sampler(1.0, top_p=0.7, seed=0)
    draws = {sampler.sample(logits) for _ in range(500)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.7; the 0.2 token is cut
    assert {Sampler(1.0, top_p=0.0, seed=1).sample(logits) for _ in range(50)} == {0}


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"temperature": float("nan")},
                                 {"temperature": 1.0, "top_p": 1.5}])
def test_invalid_settings(bad):
    with pytest.raises(ValueError):
        Sampler(**bad)
