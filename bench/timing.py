"""Timing helpers shared by every benchmark: interleaved repeats, robust statistics, paired ratios.

Why interleaved and paired: the benchmark machine is shared, so its speed drifts by tens of percent
within a minute. Timing case A for a minute and then case B would compare two different machines.
Here every round times each case once (in a rotated order, so no case always runs first), and a
ratio is taken inside each round before the median over rounds: a slow spell slows both sides of
the same pair. This module imports only the standard library and NumPy, so the tflite-runtime
worker (a separate venv with NumPy 1.x) can use it too.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def summary(values: list[float] | tuple[float, ...]) -> dict[str, float]:
    """Median, 10th and 90th percentile: robust to the odd round a neighbour's job stole."""
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "p10": float(np.percentile(arr, 10)),
            "p90": float(np.percentile(arr, 90))}


@dataclass(frozen=True)
class Stats:
    """Seconds per call of one case, one sample per round (each sample averages `loops` calls)."""

    samples: tuple[float, ...]
    loops: int

    @property
    def median(self) -> float:
        return summary(self.samples)["median"]

    def to_dict(self) -> dict[str, Any]:
        s = summary(self.samples)
        return {"median_s": s["median"], "p10_s": s["p10"], "p90_s": s["p90"],
                "repeats": len(self.samples), "loops": self.loops, "raw_s": list(self.samples)}


def _time_calls(fn: Callable[[], object], loops: int) -> float:
    """Seconds per call over `loops` back-to-back calls, with the garbage collector held off
    (as timeit does) so a collection triggered by one case is not billed to another."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - start) / loops
    finally:
        if enabled:
            gc.enable()


def calibrate(fn: Callable[[], object], min_sample_s: float) -> int:
    """Calls per sample so one sample lasts at least `min_sample_s` (timer resolution and call
    overhead then stay negligible). The first call is a warm-up: caches, lazy imports, JIT."""
    fn()
    once = max(_time_calls(fn, 1), 1e-7)
    return max(1, math.ceil(min_sample_s / once))


def interleave(cases: Mapping[str, Callable[[], object]], repeats: int,
               min_sample_s: float = 0.02) -> dict[str, Stats]:
    """Time every case once per round for `repeats` rounds, rotating the order each round."""
    names = list(cases)
    loops = {name: calibrate(cases[name], min_sample_s) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_time_calls(cases[name], loops[name]))
    return {name: Stats(tuple(samples[name]), loops[name]) for name in names}


def paired_ratio(numerator: Stats, denominator: Stats) -> dict[str, Any]:
    """Ratio of two cases timed in the same rounds: per-round ratios, then their median."""
    ratios = [a / b for a, b in zip(numerator.samples, denominator.samples, strict=True)]
    return {**summary(ratios), "repeats": len(ratios), "raw": ratios}
