"""DataHealth: counts of skipped examples for the run summary, mergeable across ranks."""

import json

import pytest

from training_mt2kd.data import DataHealth


def test_counts_and_ids_by_reason():
    health = DataHealth()
    health.record("unreadable", "a")
    health.record_events([("empty", "b"), ("unreadable", "c")])
    assert health.counts == {"unreadable": 2, "empty": 1}
    assert health.total == 3
    assert health.ids("unreadable") == ["a", "c"]
    assert str(health) == "skipped 3 examples (empty=1, unreadable=2)"


def test_ids_are_capped_but_counts_are_not():
    health = DataHealth(max_ids_per_reason=2)
    health.record_events([("too_long", str(i)) for i in range(5)])
    assert health.counts == {"too_long": 5}
    assert health.ids("too_long") == ["0", "1"]


def test_merge_adds_another_ranks_json_summary():
    rank0, rank1 = DataHealth(), DataHealth()
    rank0.record("non_finite", "x")
    rank1.record("non_finite", "y")
    rank1.record("empty", "z")
    rank0.merge(json.loads(json.dumps(rank1.to_dict())))
    assert rank0.counts == {"non_finite": 2, "empty": 1}
    assert rank0.ids("non_finite") == ["x", "y"]


def test_unknown_reason_is_refused():
    with pytest.raises(ValueError, match="'corrupted' is not a valid SkipReason"):
        DataHealth().record("corrupted", "x")
