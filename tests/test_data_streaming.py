"""BufferedBucketBatcher: buffered duration batches over a stream, sharded and resumable."""

import csv
from collections import Counter

import pytest

from training_mt2kd.data import BufferedBucketBatcher, CorpusSpec, load_corpus


@pytest.fixture(scope="module")
def stream(data_dir) -> list[dict]:
    """The fsdd manifest rows as a stream of examples with `id` and `duration_s`."""
    with open(data_dir / "fsdd/metadata.csv") as file:
        return [{"id": row["path"], "duration_s": float(row["duration_s"])} for row in csv.DictReader(file)]


def ids(batches: list[list[dict]]) -> list[list[str]]:
    return [[example["id"] for example in batch] for batch in batches]


def test_batches_respect_max_seconds_and_cover_the_stream_once(stream):
    batches = list(BufferedBucketBatcher(stream, max_duration_s=15.0, buffer_size=500, seed=0))
    assert max(sum(example["duration_s"] for example in batch) for batch in batches) <= 15.0
    assert Counter(example["id"] for batch in batches for example in batch) == Counter(e["id"] for e in stream)


def test_each_buffer_is_sorted_into_similar_lengths(stream):
    batches = list(BufferedBucketBatcher(stream, max_duration_s=15.0, buffer_size=1000, seed=0))
    spreads = [max(e["duration_s"] for e in b) - min(e["duration_s"] for e in b) for b in batches]
    assert sum(spreads) / len(spreads) < 0.15  # fsdd durations span 0.1-2.3 s


def test_resume_from_state_dict_continues_exactly(stream):
    expected = ids(list(BufferedBucketBatcher(stream, 15.0, buffer_size=400, seed=4)))
    interrupted = BufferedBucketBatcher(stream, 15.0, buffer_size=400, seed=4)
    iterator = iter(interrupted)
    head = ids([next(iterator) for _ in range(37)])
    state = interrupted.state_dict()
    assert state["examples_consumed"] > 0 and state["batches_done_in_buffer"] > 0  # part-way through a later buffer

    resumed = BufferedBucketBatcher(stream, 15.0, buffer_size=400, seed=4)
    resumed.load_state_dict(state)
    assert head + ids(list(resumed)) == expected


def test_ranks_shard_the_same_batches_and_run_equal_step_counts(stream):
    whole = ids(list(BufferedBucketBatcher(stream, 15.0, buffer_size=700, seed=2)))
    ranks = [
        ids(list(BufferedBucketBatcher(stream, 15.0, buffer_size=700, seed=2, rank=r, world_size=3))) for r in range(3)
    ]
    assert len({len(batches) for batches in ranks}) == 1
    assert {tuple(b) for batches in ranks for b in batches} == {tuple(b) for b in whole}


def test_next_epoch_reorders_batches(stream):
    batcher = BufferedBucketBatcher(stream, 15.0, buffer_size=500, seed=0)
    first, second = ids(list(batcher)), ids(list(batcher))
    assert batcher.epoch == 1
    assert first != second
    assert sorted(map(tuple, first)) == sorted(map(tuple, second))  # same buffers, same packing


def test_batches_a_streaming_corpus(data_dir):
    spec = CorpusSpec(
        name="an4",
        source=str(data_dir / "an4/metadata.csv"),
        streaming=True,
        task="asr",
        columns={"audio": "path", "text": "transcript", "duration": "duration_s"},
    )
    batches = list(BufferedBucketBatcher(load_corpus(spec), max_duration_s=20.0, buffer_size=16))
    assert all(sum(e["duration_s"] for e in batch) <= 20.0 for batch in batches)
    assert all(example["audio"]["path"].endswith(".wav") for batch in batches for example in batch)
