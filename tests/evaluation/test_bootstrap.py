"""Paired cluster bootstrap on hand-computed cases."""

import pytest
from clinrag.evaluation.bootstrap import paired_bootstrap


def test_identical_arms_have_zero_difference():
    a = [[1.0, 0.0], [0.5], [0.2, 0.4, 0.6]]
    r = paired_bootstrap(a, a, n_resamples=500)
    assert (r.diff, r.low, r.high) == (0.0, 0.0, 0.0)
    assert not r.significant


def test_constant_shift_is_recovered_exactly():
    a = [[0.9, 0.7], [0.6], [0.8, 0.5, 0.4]]
    b = [[x - 0.25 for x in case] for case in a]
    r = paired_bootstrap(a, b, n_resamples=500)
    assert r.diff == pytest.approx(0.25)
    assert r.low == pytest.approx(0.25) and r.high == pytest.approx(0.25)
    assert r.significant


def test_difference_is_the_question_level_micro_average():
    # case 1: 2 questions, a wins both by 1; case 2: 1 question, b wins by 1 → (2 - 1) / 3
    a, b = [[1.0, 1.0], [0.0]], [[0.0, 0.0], [1.0]]
    r = paired_bootstrap(a, b, n_resamples=2000, seed=1)
    assert r.diff == pytest.approx(1 / 3)
    assert r.low < r.diff < r.high
    assert r.low >= -1.0 and r.high <= 1.0
    assert r.n_cases == 2


def test_noisy_small_difference_is_not_significant():
    a = [[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]]
    b = [[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]]
    assert not paired_bootstrap(a, b, n_resamples=1000).significant


def test_cases_without_scores_are_dropped_and_pairing_is_checked():
    assert paired_bootstrap([[1.0], []], [[0.0], []], n_resamples=100).n_cases == 1
    with pytest.raises(ValueError, match="same cases"):
        paired_bootstrap([[1.0]], [[1.0], [0.0]])
    with pytest.raises(ValueError, match="case 0"):
        paired_bootstrap([[1.0, 0.0]], [[1.0]])
    with pytest.raises(ValueError, match="no case"):
        paired_bootstrap([[]], [[]])
