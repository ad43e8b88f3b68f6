"""Several corpora, each with its tasks, mixed by weight one whole batch at a time.

Design choice: every batch comes from ONE corpus, picked by weight. Batches stay bucketed by
length within a corpus (padding stays low even when one corpus is 2 s digits and another 10 s
clips), each corpus keeps its own epochs, and the choice for step s of epoch e depends only on
(seed, e, s) — so all ranks pick the same corpus at the same step and consume the same number
of batches from each, which keeps DDP in step. Across ranks and accumulation steps the gradient
still mixes tasks; every head runs every step with masked losses, so an absent task costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from datasets import Dataset, IterableDataset
from torch.utils.data import Dataset as TorchDataset

from training_mt2kd.data.corpus import CorpusSpec
from training_mt2kd.data.sampler import DurationBucketSampler


class BatchSource(Protocol):
    """What the mixer needs from a per-corpus sampler or batcher."""

    def __iter__(self) -> Iterator[list[Any]]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


MixedKey = tuple[int, Any]
"""`(corpus number, index)` for map-style corpora, `(corpus number, example)` for streaming ones."""


class CorpusMixture(TorchDataset):
    """Loaded corpora side by side; `mixture[(corpus number, index)]` is that corpus' example with
    its `corpus` name and `tasks` added, which is what the collator needs to build task masks."""

    def __init__(self, corpora: Sequence[tuple[CorpusSpec, Dataset | IterableDataset]]) -> None:
        if not corpora:
            raise ValueError("a CorpusMixture needs at least one (CorpusSpec, dataset) pair")
        names = [spec.name for spec, _ in corpora]
        if len(set(names)) != len(names):
            raise ValueError(f"corpus names must be unique in a mixture; got {names}")
        self.specs = [spec for spec, _ in corpora]
        self.datasets = [dataset for _, dataset in corpora]

    @property
    def weights(self) -> list[float]:
        return [spec.weight for spec in self.specs]

    def durations(self, corpus: int) -> np.ndarray:
        """`duration_s` of every example of a map-style corpus, (num_examples,) seconds."""
        dataset = self.datasets[corpus]
        if isinstance(dataset, IterableDataset):
            raise TypeError(f"corpus {self.specs[corpus].name!r} is streaming; batch it with BufferedBucketBatcher")
        return np.asarray(dataset.with_format("numpy")["duration_s"], dtype=np.float64)

    def __len__(self) -> int:
        return sum(len(dataset) for dataset in self.datasets)

    def __getitem__(self, key: MixedKey) -> dict[str, Any]:
        corpus, item = key
        example = dict(item) if isinstance(item, dict) else self.datasets[corpus][int(item)]
        spec = self.specs[corpus]
        example["corpus"] = spec.name
        example["tasks"] = spec.tasks
        return example

    def __getitems__(self, keys: Sequence[MixedKey]) -> list[dict[str, Any]]:
        return [self[key] for key in keys]


class MixedCorpusSampler:
    """Yields batches of `(corpus number, item)` keys, each batch from one corpus chosen by weight.

    `sources[c]` batches corpus c (a `DurationBucketSampler` yielding indices, or a
    `BufferedBucketBatcher` yielding examples); a source that runs out starts its next epoch, so
    the mix follows the weights however large each corpus is. An epoch of the mixture is
    `steps_per_epoch` batches (default: the sum of the sources' lengths). Use it as a DataLoader
    `batch_sampler` over a `CorpusMixture`, or index the mixture with its keys directly.

    Resuming: the state holds the sources' states at the start of the epoch and `batches_done`;
    `load_state_dict` restores the former and replays the choices up to the latter, so the next
    batches are exactly those that would have followed.
    """

    def __init__(
        self,
        sources: Sequence[BatchSource],
        weights: Sequence[float],
        seed: int = 0,
        steps_per_epoch: int | None = None,
    ) -> None:
        if len(sources) != len(weights) or not sources:
            raise ValueError(f"need one weight per source; got {len(sources)} sources and {len(weights)} weights")
        weights = np.asarray(weights, dtype=np.float64)
        if not (np.isfinite(weights).all() and (weights >= 0).all() and weights.sum() > 0):
            raise ValueError(f"weights must be non-negative, finite and not all zero; got {weights.tolist()}")
        if steps_per_epoch is None:
            try:
                steps_per_epoch = sum(len(source) for source in sources)
            except TypeError as error:
                raise ValueError("streaming sources have no length; pass steps_per_epoch") from error
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1; got {steps_per_epoch}")
        self.sources = list(sources)
        self.probabilities = weights / weights.sum()
        self.seed = seed
        self.steps_per_epoch = int(steps_per_epoch)
        self.epoch = 0
        self.batches_done = 0
        self._epoch_start_states = [source.state_dict() for source in self.sources]
        self._iterators: dict[int, Iterator[list[Any]]] = {}

    @classmethod
    def for_mixture(
        cls,
        mixture: CorpusMixture,
        max_duration_s: float,
        num_buckets: int = 10,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        steps_per_epoch: int | None = None,
    ) -> MixedCorpusSampler:
        """One `DurationBucketSampler` per map-style corpus of `mixture`, weighted by `CorpusSpec.weight`."""
        sources = [
            DurationBucketSampler(
                mixture.durations(corpus),
                max_duration_s,
                num_buckets,
                seed=seed + corpus,
                rank=rank,
                world_size=world_size,
            )
            for corpus in range(len(mixture.specs))
        ]
        return cls(sources, mixture.weights, seed=seed, steps_per_epoch=steps_per_epoch)

    def choices(self, epoch: int) -> np.ndarray:
        """The corpus number of every step of `epoch`, (steps_per_epoch,), the same on every rank."""
        rng = np.random.default_rng([self.seed, epoch])
        return rng.choice(len(self.sources), size=self.steps_per_epoch, p=self.probabilities)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[list[MixedKey]]:
        if self.batches_done >= self.steps_per_epoch:
            self.set_epoch(self.epoch + 1)
        choices = self.choices(self.epoch)
        while self.batches_done < self.steps_per_epoch:
            corpus = int(choices[self.batches_done])
            batch = self._next_batch(corpus)
            self.batches_done += 1
            yield [(corpus, item) for item in batch]

    def _next_batch(self, corpus: int) -> list[Any]:
        for _ in range(2):
            if corpus not in self._iterators:
                self._iterators[corpus] = iter(self.sources[corpus])
            try:
                return next(self._iterators[corpus])
            except StopIteration:
                del self._iterators[corpus]  # the next iter() starts the source's next epoch
        raise ValueError(f"source {corpus} yields no batches; is its corpus empty?")

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` of the mixture, unless it is the epoch in progress (sources carry on)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches_done = 0
            self._epoch_start_states = [source.state_dict() for source in self.sources]

    def state_dict(self, consumed_batches: int | None = None) -> dict[str, Any]:
        """The position to resume from; `consumed_batches` as in `DurationBucketSampler.state_dict`."""
        batches_done = self.batches_done if consumed_batches is None else consumed_batches
        if not 0 <= batches_done <= self.steps_per_epoch:
            raise ValueError(f"consumed_batches must be in [0, {self.steps_per_epoch}]; got {batches_done}")
        return {
            "epoch": self.epoch,
            "batches_done": batches_done,
            "seed": self.seed,
            "steps_per_epoch": self.steps_per_epoch,
            "sources_at_epoch_start": self._epoch_start_states,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sources as at the saved epoch's start, then replay its first `batches_done` batches."""
        for key in ("seed", "steps_per_epoch"):
            if state[key] != getattr(self, key):
                raise ValueError(f"cannot resume the mixture: saved {key}={state[key]}, now {getattr(self, key)}")
        saved_sources = state["sources_at_epoch_start"]
        if len(saved_sources) != len(self.sources):
            raise ValueError(f"cannot resume the mixture: saved {len(saved_sources)} corpora, now {len(self.sources)}")
        for source, source_state in zip(self.sources, saved_sources, strict=True):
            source.load_state_dict(source_state)
        self._epoch_start_states = state["sources_at_epoch_start"]
        self._iterators = {}
        self.epoch = int(state["epoch"])
        self.batches_done = 0
        choices = self.choices(self.epoch)
        for step in range(int(state["batches_done"])):
            self._next_batch(int(choices[step]))
        self.batches_done = int(state["batches_done"])
