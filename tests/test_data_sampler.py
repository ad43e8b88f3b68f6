"""DurationBucketSampler: seconds-sized batches, identical on every rank, sharded, resumable."""

import csv
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from training_mt2kd.data import DurationBucketSampler


@pytest.fixture(scope="module")
def durations(data_dir) -> np.ndarray:
    """The 3000 real fsdd durations (0.1-2.3 s)."""
    with open(data_dir / "fsdd/metadata.csv") as file:
        return np.array([float(row["duration_s"]) for row in csv.DictReader(file)])


def test_batches_respect_max_seconds(durations):
    sampler = DurationBucketSampler(durations, max_duration_s=20.0, seed=1)
    batches = list(sampler)
    assert max(durations[batch].sum() for batch in batches) <= 20.0
    assert np.mean([durations[batch].sum() for batch in batches]) > 15.0  # batches are actually filled


def test_one_epoch_covers_every_example_exactly_once(durations):
    batches = list(DurationBucketSampler(durations, max_duration_s=20.0, seed=1))
    assert Counter(index for batch in batches for index in batch) == Counter(range(len(durations)))


def test_bucketing_reduces_padding(durations):
    def padded_over_real(num_buckets: int) -> float:
        batches = list(DurationBucketSampler(durations, 20.0, num_buckets=num_buckets, seed=0))
        return sum(durations[batch].max() * len(batch) for batch in batches) / durations.sum()

    assert padded_over_real(20) < padded_over_real(1) - 0.2


def test_epochs_differ_and_the_same_seed_repeats(durations):
    first = DurationBucketSampler(durations, 20.0, seed=3)
    again = DurationBucketSampler(durations, 20.0, seed=3)
    assert first.global_batches(0) == again.global_batches(0)
    assert first.global_batches(0) != first.global_batches(1)


def test_every_rank_plans_the_same_batches_then_takes_every_world_size_th(durations):
    world_size = 4
    samplers = [DurationBucketSampler(durations, 20.0, seed=5, rank=rank, world_size=world_size) for rank in range(4)]
    plans = [sampler.global_batches(0) for sampler in samplers]
    assert all(plan == plans[0] for plan in plans)
    for rank, sampler in enumerate(samplers):
        assert list(sampler) == plans[0][rank::world_size]


def test_ranks_get_equal_batch_counts_and_together_cover_the_corpus(durations):
    world_size = 7  # chosen so that the batch count is not a multiple of it
    ranks = [list(DurationBucketSampler(durations, 20.0, seed=5, rank=r, world_size=world_size)) for r in range(7)]
    assert len({len(batches) for batches in ranks}) == 1
    seen = {index for batches in ranks for batch in batches for index in batch}
    assert seen == set(range(len(durations)))


def test_drop_last_drops_the_uneven_tail_instead_of_repeating(durations):
    plain = DurationBucketSampler(durations, 20.0, seed=5, world_size=7, drop_last=True)
    batches = plain.global_batches(0)
    assert len(batches) % 7 == 0
    assert len({tuple(batch) for batch in batches}) == len(batches)


def test_resume_from_state_dict_continues_with_the_same_batches(durations):
    reference = DurationBucketSampler(durations, 20.0, seed=9, rank=1, world_size=2)
    reference.set_epoch(2)
    expected = list(reference)

    interrupted = DurationBucketSampler(durations, 20.0, seed=9, rank=1, world_size=2)
    interrupted.set_epoch(2)
    iterator = iter(interrupted)
    head = [next(iterator) for _ in range(5)]
    state = interrupted.state_dict()

    resumed = DurationBucketSampler(durations, 20.0, seed=9, rank=1, world_size=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a resumed loop calls this again: the position must survive it
    assert head + list(resumed) == expected


def test_consumed_batches_overrides_what_a_prefetching_loader_pulled(durations):
    sampler = DurationBucketSampler(durations, 20.0, seed=9)
    expected = list(DurationBucketSampler(durations, 20.0, seed=9))
    iterator = iter(sampler)
    for _ in range(6):  # the loader prefetched 6 batches, the loop trained on 4
        next(iterator)
    resumed = DurationBucketSampler(durations, 20.0, seed=9)
    resumed.load_state_dict(sampler.state_dict(consumed_batches=4))
    assert list(resumed) == expected[4:]


def test_iterating_a_finished_epoch_starts_the_next(durations):
    sampler = DurationBucketSampler(durations, 20.0, seed=2)
    list(sampler)
    second = list(sampler)
    assert sampler.epoch == 1
    assert second == DurationBucketSampler(durations, 20.0, seed=2).global_batches(1)


def test_state_from_another_world_size_is_refused(durations):
    state = DurationBucketSampler(durations, 20.0, world_size=2).state_dict()
    with pytest.raises(ValueError, match="world_size: saved 2, now 1"):
        DurationBucketSampler(durations, 20.0).load_state_dict(state)


def test_example_longer_than_a_batch_is_refused():
    with pytest.raises(ValueError, match="example 1 lasts 25.00 s, more than max_duration_s=20"):
        DurationBucketSampler([1.0, 25.0], max_duration_s=20)


def test_works_as_a_dataloader_batch_sampler(durations):
    sampler = DurationBucketSampler(durations[:200], 10.0, seed=0)
    loader = DataLoader(torch.arange(200), batch_sampler=sampler)
    assert sorted(torch.cat(list(loader)).tolist()) == list(range(200))
