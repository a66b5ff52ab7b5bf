"""Statistics: summaries of lists of numbers, and relations between two lists."""

from __future__ import annotations

import math
import statistics


def _check(numbers: list[float], at_least: int = 1) -> None:
    if len(numbers) < at_least:
        raise ValueError(f"at least {at_least} number(s) needed")


def mean(numbers: list[float], round_to: int | None = None) -> float:
    """The arithmetic mean, optionally rounded."""
    _check(numbers)
    value = statistics.fmean(numbers)
    return round(value, round_to) if round_to is not None else value


def median(numbers: list[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    _check(numbers)
    return float(statistics.median(numbers))


def standard_deviation(numbers: list[float], sample: bool = True) -> float:
    """The standard deviation: of a sample (n - 1) or of a whole population (n)."""
    _check(numbers, 2 if sample else 1)
    return statistics.stdev(numbers) if sample else statistics.pstdev(numbers)


def percentile(numbers: list[float], p: float) -> float:
    """The p-th percentile (0-100), by linear interpolation between closest ranks."""
    _check(numbers)
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    ordered = sorted(numbers)
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def linear_regression(x: list[float], y: list[float]) -> dict[str, float]:
    """Least-squares line y = slope * x + intercept, with its r squared."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    _check(x, 2)
    slope, intercept = statistics.linear_regression(x, y)
    r = statistics.correlation(x, y)
    return {"slope": slope, "intercept": intercept, "r_squared": r * r}


def correlation(x: list[float], y: list[float]) -> float:
    """Pearson's correlation coefficient of two equally long lists."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    _check(x, 2)
    return statistics.correlation(x, y)
