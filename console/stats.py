"""The Mann-Whitney U test, as Kayenta and Argo's Kayenta provider compare a canary with its
baseline: are the canary's values of this stage stochastically greater than the baseline's?

Written here (about sixty lines) rather than imported from scipy: scipy with numpy is ~60 MB
and ~0.3 s of import for one function, on a console whose start-up budget is counted in tenths
of a second (STACK.md). The tests check every value against ``scipy.stats.mannwhitneyu``, a
test dependency only.

The choice of method is scipy's ``method="auto"``: the exact distribution of U when one sample
has at most 8 values and no value is tied, otherwise the normal approximation with the tie
correction and the continuity correction. Pure; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

Alternative = Literal["greater", "less", "two-sided"]

#: Up to this many values in one sample (and no ties), the exact distribution is used.
EXACT_MAX = 8


@dataclass(frozen=True)
class MannWhitney:
    """The outcome of one test: U of the first sample, the p-value, how it was computed."""

    u: float
    p: float
    n_first: int
    n_second: int
    method: Literal["exact", "asymptotic"]


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) of ``values`` and the sizes of their groups of ties."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        average = (start + end) / 2 + 1
        for position in range(start, end + 1):
            ranks[order[position]] = average
        ties.append(end - start + 1)
        start = end + 1
    return ranks, ties


@cache
def _arrangements(n1: int, n2: int, u: int) -> int:
    """How many orderings of n1 + n2 distinct values give the first sample a U of ``u``."""
    if u < 0 or u > n1 * n2:
        return 0
    if n1 == 0 or n2 == 0:
        return 1 if u == 0 else 0
    # The largest value is either the first sample's (beating all n2) or the second's.
    return _arrangements(n1 - 1, n2, u - n2) + _arrangements(n1, n2 - 1, u)


def _exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) under the null hypothesis, counted exactly."""
    total = math.comb(n1 + n2, n1)
    return sum(_arrangements(n1, n2, k) for k in range(max(u, 0), n1 * n2 + 1)) / total


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def mann_whitney_u(first: Sequence[float], second: Sequence[float],
                   alternative: Alternative = "greater") -> MannWhitney:
    """Test whether ``first`` tends to be greater than ``second`` (``alternative="greater"``),
    smaller, or either. Both samples need at least one value; values must be finite."""
    n1, n2 = len(first), len(second)
    if n1 == 0 or n2 == 0:
        raise ValueError("each sample needs at least one value")
    ranks, ties = _ranks([*first, *second])
    u1 = math.fsum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1
    elif alternative == "less":
        u, factor = u2, 1
    else:
        u, factor = max(u1, u2), 2
    tied = any(size > 1 for size in ties)
    if (n1 <= EXACT_MAX or n2 <= EXACT_MAX) and not tied:
        p = _exact_sf(round(u), n1, n2)
        method: Literal["exact", "asymptotic"] = "exact"
    else:
        n = n1 + n2
        tie_term = sum(size ** 3 - size for size in ties)
        spread = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        # Every value equal (spread 0): nothing tells the samples apart.
        p = 1.0 if spread == 0 else _normal_sf((u - n1 * n2 / 2 - 0.5) / spread)
        method = "asymptotic"
    return MannWhitney(u=u1, p=min(1.0, max(0.0, p * factor)), n_first=n1, n_second=n2,
                       method=method)


__all__ = ["Alternative", "MannWhitney", "mann_whitney_u"]
