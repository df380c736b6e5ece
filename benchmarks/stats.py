"""Paired ratios and their summaries."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Median and range of a set of values, written ``median [min–max]``."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        values = sorted(values)
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), values[0], values[-1], len(values))

    def format(self, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
        f = f"{{:.{digits}f}}"
        median, low, high = (f.format(v * scale) for v in (self.median, self.low, self.high))
        return f"{median}{unit} [{low}–{high}]"


def paired_ratios(
    rows: Sequence[object], numerator: str, denominator: str, key: str, value: str, pair: str
) -> list[float]:
    """``numerator / denominator`` for every ``pair`` value (a round) holding both."""
    by_pair: dict[object, dict[object, float]] = {}
    for row in rows:
        by_pair.setdefault(getattr(row, pair), {})[getattr(row, key)] = getattr(row, value)
    return [
        found[numerator] / found[denominator]
        for found in by_pair.values()
        if numerator in found and denominator in found and found[denominator]
    ]
