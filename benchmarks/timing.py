"""Wall-clock timing of model calls: warm-up calls, then interleaved rounds, medians.

Rounds interleave the candidates (A B C, A B C, ...) so that a machine shared with other work slows
them alike, and ratios taken within a round stay meaningful when absolute times drift.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(call: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call takes, with the device's queue drained before and after."""
    return time_call_with_cpu(call, device)[0]


def time_call_with_cpu(call: Callable[[], Any], device: torch.device) -> tuple[float, float]:
    """Wall-clock seconds of one call and the CPU seconds the process (all its threads) spent in it.

    On a CPU shared with other work, wall time grows with the competition while CPU time stays near the
    work done (plus what waiting threads spin), so the two together show how much of a slow call was the
    machine's load.
    """
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    call()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu_start


@dataclass
class TimedCandidate:
    """A call to time: `warmup` untimed calls first, then `rounds` timed ones."""

    name: str
    call: Callable[[], Any]
    warmup: int = 1
    rounds: int = 3
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_seconds)


def run_interleaved(candidates: list[TimedCandidate], device: torch.device, report: Callable[[str], None] = print) -> None:
    """Warm every candidate up, then time them round by round (a candidate drops out after its rounds)."""
    for candidate in candidates:
        for _ in range(candidate.warmup):
            time_call(candidate.call, device)
    for round_index in range(max(candidate.rounds for candidate in candidates)):
        for candidate in candidates:
            if round_index < candidate.rounds:
                wall_s, cpu_s = time_call_with_cpu(candidate.call, device)
                candidate.seconds.append(wall_s)
                candidate.cpu_seconds.append(cpu_s)
                report(f"    {candidate.name}: round {round_index + 1}: {wall_s:.4f} s ({cpu_s:.4f} CPU s)")


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over rounds of numerator / denominator, pairing the calls of the same round."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))
