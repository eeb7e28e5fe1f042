"""Paired bootstrap confidence interval of the difference between two arms on the same cases.

Questions of one case share a scenario and (for retrieval) often the same passages, so they are not
independent: the resampling unit is the *case* (a cluster bootstrap). Each replicate draws cases with
replacement, the same draw for both arms (paired), and recomputes each arm's question-level mean over the
drawn cases — the same micro-average the metric tables report. The interval is the percentile interval of
the replicated differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from clinrag.core.defaults import BOOTSTRAP_RESAMPLES


@dataclass(frozen=True)
class PairedDiff:
    """``mean_a - mean_b`` with its ``level`` percentile interval over ``n_cases`` paired cases."""

    diff: float
    low: float
    high: float
    n_cases: int
    level: float = 0.95

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {"diff": round(self.diff, 4), "ci_low": round(self.low, 4), "ci_high": round(self.high, 4),
                "n_cases": self.n_cases, "level": self.level, "significant": self.significant}


def paired_bootstrap(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], *,
                     n_resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95, seed: int = 0) -> PairedDiff:
    """CI of mean(a) - mean(b), where ``a[i]`` and ``b[i]`` are the per-question scores of case ``i``.

    Cases with no scores (the metric does not apply to them) are dropped from both arms. Each case must have
    as many scores in ``a`` as in ``b`` (the same questions), else the pairing is wrong and ValueError is raised.
    """
    if len(a) != len(b):
        raise ValueError(f"paired arms must cover the same cases: {len(a)} vs {len(b)}")
    sums_a, sums_b, counts = [], [], []
    for i, (qa, qb) in enumerate(zip(a, b)):
        if len(qa) != len(qb):
            raise ValueError(f"case {i}: {len(qa)} scores in one arm, {len(qb)} in the other")
        if qa:
            sums_a.append(float(sum(qa)))
            sums_b.append(float(sum(qb)))
            counts.append(len(qa))
    n = len(counts)
    if n == 0:
        raise ValueError("no case has a score in both arms")
    sa, sb, c = np.asarray(sums_a), np.asarray(sums_b), np.asarray(counts, dtype=float)
    diff = (sa.sum() - sb.sum()) / c.sum()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_resamples, n))
    reps = (sa[draws].sum(axis=1) - sb[draws].sum(axis=1)) / c[draws].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha])
    return PairedDiff(float(diff), float(low), float(high), n, level)
