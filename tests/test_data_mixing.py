"""Mixing corpora by weight: one corpus per batch, deterministic from the seed, resumable."""

import numpy as np
import pytest
from torch.utils.data import DataLoader

from training_mt2kd.data import (
    AudioCollator,
    BufferedBucketBatcher,
    CorpusMixture,
    CorpusSpec,
    DurationBucketSampler,
    MixedCorpusSampler,
    load_corpus,
)


def synthetic_sources(seed: int = 0) -> list[DurationBucketSampler]:
    rng = np.random.default_rng(0)
    return [DurationBucketSampler(rng.uniform(1, 10, size=n), 60.0, seed=seed) for n in (400, 100, 50)]


def test_corpus_frequencies_follow_the_weights():
    sampler = MixedCorpusSampler(synthetic_sources(), weights=[6.0, 3.0, 1.0], seed=0, steps_per_epoch=3000)
    counts = np.bincount([batch[0][0] for batch in sampler], minlength=3) / 3000
    assert counts == pytest.approx([0.6, 0.3, 0.1], abs=0.03)


def test_every_batch_comes_from_one_corpus():
    sampler = MixedCorpusSampler(synthetic_sources(), weights=[1, 1, 1], seed=0, steps_per_epoch=200)
    assert all(len({corpus for corpus, _ in batch}) == 1 for batch in sampler)


def test_same_seed_gives_the_same_mix_and_another_seed_does_not():
    def run(seed: int) -> list:
        return list(MixedCorpusSampler(synthetic_sources(), weights=[2, 1, 1], seed=seed, steps_per_epoch=100))

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_corpus_choice_is_the_same_on_every_rank():
    def choices(rank: int) -> list[int]:
        rng = np.random.default_rng(0)
        sources = [DurationBucketSampler(rng.uniform(1, 10, n), 60.0, rank=rank, world_size=2) for n in (400, 100)]
        return [batch[0][0] for batch in MixedCorpusSampler(sources, [3, 1], seed=1, steps_per_epoch=150)]

    assert choices(0) == choices(1)


def test_exhausted_corpus_starts_its_next_epoch():
    sources = synthetic_sources()
    small_epoch = len(sources[2])
    sampler = MixedCorpusSampler(sources, weights=[0, 0, 1], seed=0, steps_per_epoch=small_epoch + 3)
    list(sampler)
    assert sources[2].epoch == 1 and sources[2].batches_done == 3


def test_resume_from_state_dict_continues_with_the_same_batches():
    expected = list(MixedCorpusSampler(synthetic_sources(), [2, 1, 1], seed=3, steps_per_epoch=120))
    interrupted = MixedCorpusSampler(synthetic_sources(), [2, 1, 1], seed=3, steps_per_epoch=120)
    iterator = iter(interrupted)
    head = [next(iterator) for _ in range(50)]
    resumed = MixedCorpusSampler(synthetic_sources(), [2, 1, 1], seed=3, steps_per_epoch=120)
    resumed.load_state_dict(interrupted.state_dict())
    assert head + list(resumed) == expected


def test_resume_in_a_later_epoch_with_consumed_batches():
    reference = MixedCorpusSampler(synthetic_sources(), [1, 1, 1], seed=3, steps_per_epoch=300)
    list(reference)
    expected_epoch_1 = list(reference)

    run = MixedCorpusSampler(synthetic_sources(), [1, 1, 1], seed=3, steps_per_epoch=300)
    list(run)
    iterator = iter(run)
    for _ in range(40):  # prefetched 40, trained on 30
        next(iterator)
    resumed = MixedCorpusSampler(synthetic_sources(), [1, 1, 1], seed=3, steps_per_epoch=300)
    resumed.load_state_dict(run.state_dict(consumed_batches=30))
    assert list(resumed) == expected_epoch_1[30:]


def test_streaming_sources_mix_and_resume():
    streams = [
        [{"id": f"{name}{i}", "duration_s": 1.0 + i % 5} for i in range(n)] for name, n in (("a", 90), ("b", 40))
    ]

    def sampler() -> MixedCorpusSampler:
        batchers = [BufferedBucketBatcher(stream, 12.0, buffer_size=25, seed=1) for stream in streams]
        return MixedCorpusSampler(batchers, [1, 1], seed=0, steps_per_epoch=40)

    expected = list(sampler())
    interrupted = sampler()
    iterator = iter(interrupted)
    head = [next(iterator) for _ in range(17)]
    resumed = sampler()
    resumed.load_state_dict(interrupted.state_dict())
    assert head + list(resumed) == expected


def test_mixture_feeds_a_dataloader_with_task_masks(data_dir, tmp_path):
    cache = str(tmp_path / "cache")
    asr = CorpusSpec(
        name="an4",
        source=str(data_dir / "an4/metadata.csv"),
        task="asr",
        weight=1.0,
        cache_dir=cache,
        columns={"audio": "path", "text": "transcript", "duration": "duration_s"},
    )
    events = CorpusSpec(
        name="events",
        source=str(data_dir / "sound_events/metadata.csv"),
        task="distill",
        weight=1.0,
        columns={"audio": "path", "duration": "duration_s"},
        max_duration_s=12.0,
        cache_dir=cache,
    )
    mixture = CorpusMixture([(asr, load_corpus(asr)), (events, load_corpus(events))])
    sampler = MixedCorpusSampler.for_mixture(mixture, max_duration_s=25.0, num_buckets=2, seed=0, steps_per_epoch=4)
    loader = DataLoader(mixture, batch_sampler=sampler, collate_fn=AudioCollator())
    for batch in loader:
        corpus = batch["corpus"][0]
        assert set(batch["corpus"]) == {corpus}
        assert batch["task_masks"]["asr"].all() == (corpus == "an4")
        assert batch["task_masks"]["distill"].all() == (corpus == "events")
        assert batch["waveforms"].shape[0] == len(batch["ids"]) > 0
