"""Small statistics over timings."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with `fraction` of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def growth_exponent(small: tuple[int, float], large: tuple[int, float]) -> float:
    """k in value ∝ members^k between two sizes: 1 is linear, below 1 better, above 1 worse."""
    (n1, v1), (n2, v2) = small, large
    if v1 <= 0 or v2 <= 0 or n1 == n2:
        return math.nan
    return math.log(v2 / v1) / math.log(n2 / n1)
