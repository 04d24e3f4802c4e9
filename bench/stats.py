"""Percentiles and summaries of latency samples (milliseconds)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 90, 99)


def percentile(samples: Sequence[float], pct: float) -> float:  # float-ok: measurements (latencies), not money
    """The `pct`-th percentile by linear interpolation between the closest ranks (the
    definition numpy calls "linear"): p0 is the minimum, p100 the maximum."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {pct}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: Iterable[float], pcts: Iterable[float] = PERCENTILES) -> dict[str, float]:
    """{"n", "min", "p50", …, "max", "mean"} of the samples, rounded to 0.01 ms."""
    values = list(samples)
    if not values:
        return {"n": 0}
    out: dict[str, float] = {"n": len(values), "min": round(min(values), 2)}
    for pct in pcts:
        out[f"p{pct:g}"] = round(percentile(values, pct), 2)
    out["max"] = round(max(values), 2)
    out["mean"] = round(sum(values) / len(values), 2)
    return out


def verdict(value: float, target: float) -> str:  # float-ok: measurements, not money
    """"met" when value <= target, else "MISSED" (shouty on purpose: the report must show it)."""
    return "met" if value <= target else "MISSED"
