"""Verdicts on declared paired comparisons: is the reference method ahead of, behind, or level with a baseline?

A study declares its main comparisons before the main runs (commands/grid.py, `compare:`). For each, over the
seeds both methods ran, the paired differences d_i = top-1(reference) − top-1(baseline) — a seed fixes the
initialisation and the data order for both — give:

- a two-sided t-interval for the mean difference at the Bonferroni-adjusted level 1 − α/m, m the number of
  declared comparisons in the table (Dunn 1961): the m intervals hold simultaneously with probability
  ≥ 1 − α, so the interval shown is the one the verdict reads;
- two one-sided tests of equivalence (Schuirmann 1987, TOST) against the margin ±δ at the same adjusted α:
  the difference is inside the margin when both one-sided nulls (mean ≤ −δ, mean ≥ +δ) are rejected.

Verdict: **ahead** / **behind** when the adjusted interval excludes zero (and the difference is not shown to be
inside the margin); **level** when TOST puts it inside the margin and the interval covers zero; **ahead
(within margin)** / **behind (within margin)** when both hold — a real difference, smaller than the margin;
**undecided** otherwise.

A cell whose seeds split into collapsed runs (closer to chance than to dense) and healthy ones is not a
t-distributed sample: such a comparison gets the verdict **mixed collapse** and no interval; the report gives
its collapse rate instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

AHEAD, BEHIND, LEVEL, UNDECIDED, MIXED_COLLAPSE = "ahead", "behind", "level", "undecided", "mixed collapse"
WITHIN_MARGIN = " (within margin)"


@dataclass(frozen=True)
class Verdict:
    """One declared comparison. `difference`: mean of reference − baseline; `low`/`high`: its interval at
    `level` (Bonferroni-adjusted); `tost_p`: the larger of the two one-sided p-values against ±margin."""

    verdict: str
    n: int
    difference: float
    low: float
    high: float
    level: float
    tost_p: float


def paired_interval(differences: Sequence[float], family_size: int = 1,
                    alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, low, high): the two-sided t-interval of the mean paired difference at level 1 − alpha/family_size."""
    values = np.asarray(differences, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(1 - alpha / family_size / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def tost_pvalue(differences: Sequence[float], margin: float) -> float:
    """Schuirmann's two one-sided tests that the mean paired difference lies in (−margin, +margin): the larger
    of the two one-sided p-values (small: equivalent). NaN below two values; a sample without spread is
    equivalent exactly when its mean lies inside the margin."""
    values = np.asarray(differences, dtype=float)
    n = len(values)
    if n < 2:
        return math.nan
    mean, se = float(values.mean()), float(values.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return 0.0 if -margin < mean < margin else 1.0
    above_lower = stats.t.sf((mean + margin) / se, n - 1)  # H0: mean ≤ −margin
    below_upper = stats.t.cdf((mean - margin) / se, n - 1)  # H0: mean ≥ +margin
    return float(max(above_lower, below_upper))


def decide(differences: Sequence[float], margin: float, family_size: int, alpha: float = 0.05) -> Verdict:
    """The verdict on one declared comparison from its paired differences (reference − baseline)."""
    mean, low, high = paired_interval(differences, family_size, alpha)
    p = tost_pvalue(differences, margin)
    adjusted = alpha / family_size
    n = len(differences)
    if n < 2:
        return Verdict(UNDECIDED, n, mean, low, high, 1 - adjusted, p)
    inside = p < adjusted
    if low > 0 or high < 0:
        label = (AHEAD if low > 0 else BEHIND) + (WITHIN_MARGIN if inside else "")
    else:
        label = LEVEL if inside else UNDECIDED
    return Verdict(label, n, mean, low, high, 1 - adjusted, p)


def collapse_threshold(chance, dense):
    """The test top-1 below which a run has collapsed: closer to chance than to the dense network's. Numbers or
    pandas Series alike."""
    return (chance + dense) / 2
