"""Counting the examples that training skipped, so bad data shows up in logs instead of crashes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import Enum


class SkipReason(str, Enum):
    """Why an example was left out of a batch or a corpus."""

    UNREADABLE = "unreadable"  # missing file, truncated or non-audio bytes
    EMPTY = "empty"  # decodes to zero samples
    NON_FINITE = "non_finite"  # NaN or infinite samples, or samples far outside [-1, 1] (decode.MAX_SAMPLE_MAGNITUDE)
    TOO_SHORT = "too_short"  # below the corpus' min_duration_s
    TOO_LONG = "too_long"  # above max_duration_s
    UNKNOWN_LABEL = "unknown_label"  # a label name that is not in the label list (label dropped)
    UNKNOWN_SPEAKER = "unknown_speaker"  # a speaker not in the speaker index (speaker target masked)


SkipEvent = tuple[str, str]
"""`(reason, example_id)`: one skipped example (or one dropped target), as carried in a batch."""


class DataHealth:
    """Counts of skipped examples by reason, with the first `max_ids_per_reason` ids of each.

    The collator reports what it skipped in `batch["skipped"]` (it may run in DataLoader worker
    processes, which cannot update an object of the main process); the training loop feeds those
    events here with `record_events`, and `load_corpus` records its duration filter directly.
    `to_dict()` is JSON-ready for the run summary; `merge` sums the counts of several ranks.
    """

    def __init__(self, max_ids_per_reason: int = 100) -> None:
        if max_ids_per_reason < 0:
            raise ValueError(f"max_ids_per_reason must be >= 0; got {max_ids_per_reason}")
        self.max_ids_per_reason = max_ids_per_reason
        self._counts: Counter[str] = Counter()
        self._ids: dict[str, list[str]] = {}

    def record(self, reason: SkipReason | str, example_id: str) -> None:
        """Count one skipped example."""
        reason = SkipReason(reason).value
        self._counts[reason] += 1
        ids = self._ids.setdefault(reason, [])
        if len(ids) < self.max_ids_per_reason:
            ids.append(str(example_id))

    def record_events(self, events: Iterable[SkipEvent]) -> None:
        """Count the `(reason, example_id)` events of one batch (`batch["skipped"]`)."""
        for reason, example_id in events:
            self.record(reason, example_id)

    @property
    def counts(self) -> dict[str, int]:
        """Skipped examples per reason."""
        return dict(self._counts)

    @property
    def total(self) -> int:
        """Skipped examples over all reasons."""
        return sum(self._counts.values())

    def ids(self, reason: SkipReason | str) -> list[str]:
        """The first recorded ids skipped for `reason`."""
        return list(self._ids.get(SkipReason(reason).value, []))

    def to_dict(self) -> dict[str, dict]:
        """`{"counts": {reason: n}, "ids": {reason: [id, ...]}}`, JSON-serialisable."""
        return {"counts": self.counts, "ids": {reason: list(ids) for reason, ids in self._ids.items()}}

    def merge(self, other: DataHealth | Mapping[str, dict]) -> None:
        """Add another counter (or its `to_dict()`, e.g. gathered from another rank) to this one."""
        state = other.to_dict() if isinstance(other, DataHealth) else other
        for reason, count in state["counts"].items():
            self._counts[SkipReason(reason).value] += int(count)
        for reason, ids in state.get("ids", {}).items():
            kept = self._ids.setdefault(SkipReason(reason).value, [])
            kept.extend(ids[: max(self.max_ids_per_reason - len(kept), 0)])

    def __str__(self) -> str:
        if not self._counts:
            return "no examples skipped"
        details = ", ".join(f"{reason}={count}" for reason, count in sorted(self._counts.items()))
        return f"skipped {self.total} examples ({details})"
