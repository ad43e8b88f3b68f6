"""Regularisation rates that follow the training batch count (icefall's ScheduledFloat).

The batch count is an explicit argument of every forward that needs it. In eval, or when no batch
count is given, every schedule returns its `default`, which for the regularisers is the inert value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Piecewise-linear function of the batch count, constant outside its points.

    Args:
        points: `((batch_count, value), ...)` with increasing batch counts.
        default: value used in eval or when the batch count is unknown.
    """

    points: tuple[tuple[float, float], ...]
    default: float = 0.0

    def __call__(self, batch_count: float | None, training: bool = True) -> float:
        if batch_count is None or not training:
            return self.default
        (first_x, first_y), (last_x, last_y) = self.points[0], self.points[-1]
        if batch_count <= first_x:
            return first_y
        if batch_count >= last_x:
            return last_y
        for (x0, y0), (x1, y1) in zip(self.points, self.points[1:]):
            if x0 <= batch_count <= x1:
                return y0 + (y1 - y0) * (batch_count - x0) / (x1 - x0)
        raise AssertionError("unreachable: points must be sorted by batch count")


def schedule(*points: tuple[float, float], default: float = 0.0) -> Schedule:
    """`schedule((0, 0.3), (20000, 0.1))` → a `Schedule` over those points."""
    return Schedule(tuple((float(x), float(y)) for x, y in points), default)
