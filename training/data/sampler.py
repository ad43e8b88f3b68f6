"""Batches sized by seconds of audio, bucketed by length, identical on every rank, resumable."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler


def pack_by_duration(indices: Sequence[int], durations: np.ndarray, max_duration_s: float) -> list[list[int]]:
    """Split `indices` (in order) into consecutive batches whose durations sum to <= max_duration_s."""
    batches: list[list[int]] = []
    batch: list[int] = []
    total_s = 0.0
    for index in indices:
        duration_s = float(durations[index])
        if batch and total_s + duration_s > max_duration_s:
            batches.append(batch)
            batch, total_s = [], 0.0
        batch.append(int(index))
        total_s += duration_s
    if batch:
        batches.append(batch)
    return batches


def equalise_for_ranks(batches: list[Any], world_size: int, drop_last: bool) -> list[Any]:
    """Make the batch count a multiple of world_size: drop the tail, or repeat batches from the start."""
    remainder = len(batches) % world_size
    if remainder == 0:
        return batches
    if drop_last and len(batches) >= world_size:
        return batches[: len(batches) - remainder]
    missing = world_size - remainder
    return batches + [batches[position % len(batches)] for position in range(missing)]


def check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size and world_size >= 1; got rank={rank}, world_size={world_size}")


class DurationBucketSampler(Sampler[list[int]]):
    """Batch sampler over a map-style corpus: lists of example indices, about `max_duration_s` each.

    Per epoch, from `(seed, epoch)` only: examples are sorted by duration into `num_buckets`
    equal-count buckets, shuffled within each bucket, packed greedily into batches whose total
    duration is at most `max_duration_s` seconds (the sum of the unpadded durations), and the
    batches of all buckets are shuffled together. Every rank computes the same batch list; the
    list is then made a multiple of `world_size` (the first batches repeat, or with `drop_last`
    the tail is dropped) and rank r takes batches r, r + world_size, ... — so every rank runs the
    same number of steps and DDP never waits on a rank that ran out.

    Position: `state_dict()` holds `(epoch, batches_done)`; after `load_state_dict` the next
    iteration continues with exactly the batches that would have followed. `set_epoch(e)` starts
    epoch e from its beginning unless e is the epoch already in progress (so a resumed loop may
    call it); iterating a finished epoch moves on to the next one.
    """

    def __init__(
        self,
        durations: Sequence[float] | np.ndarray,
        max_duration_s: float,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.durations = np.asarray(durations, dtype=np.float64)
        if self.durations.ndim != 1 or self.durations.size == 0:
            raise ValueError(f"durations must be a non-empty 1-D sequence of seconds; got shape {self.durations.shape}")
        if not np.isfinite(self.durations).all() or (self.durations < 0).any():
            bad = int(np.flatnonzero(~np.isfinite(self.durations) | (self.durations < 0))[0])
            raise ValueError(
                f"duration of example {bad} is {self.durations[bad]}; durations must be finite seconds >= 0"
            )
        longest = int(np.argmax(self.durations))
        if self.durations[longest] > max_duration_s:
            raise ValueError(
                f"example {longest} lasts {self.durations[longest]:.2f} s, more than max_duration_s={max_duration_s}; "
                "raise max_duration_s or filter long examples out (CorpusSpec.max_duration_s)"
            )
        if num_buckets < 1:
            raise ValueError(f"num_buckets must be >= 1; got {num_buckets}")
        check_rank(rank, world_size)
        self.max_duration_s = float(max_duration_s)
        self.num_buckets = min(num_buckets, self.durations.size)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.batches_done = 0
        self._plan_cache: tuple[int, list[list[int]]] | None = None

    def global_batches(self, epoch: int) -> list[list[int]]:
        """Every rank's batches of `epoch`, in order, before sharding (identical on all ranks)."""
        rng = np.random.default_rng([self.seed, epoch])
        by_length = np.argsort(self.durations, kind="stable")
        batches: list[list[int]] = []
        for bucket in np.array_split(by_length, self.num_buckets):
            if self.shuffle:
                bucket = rng.permutation(bucket)
            batches += pack_by_duration(bucket, self.durations, self.max_duration_s)
        if self.shuffle:
            batches = [batches[position] for position in rng.permutation(len(batches))]
        return equalise_for_ranks(batches, self.world_size, self.drop_last)

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        """This rank's batches of `epoch`."""
        if self._plan_cache is None or self._plan_cache[0] != epoch:
            self._plan_cache = (epoch, self.global_batches(epoch)[self.rank :: self.world_size])
        return self._plan_cache[1]

    def __len__(self) -> int:
        """Batches this rank yields in the current epoch (from its start)."""
        return len(self.batches_for_epoch(self.epoch))

    def __iter__(self) -> Iterator[list[int]]:
        if self.batches_done >= len(self):
            self.set_epoch(self.epoch + 1)
        batches = self.batches_for_epoch(self.epoch)
        while self.batches_done < len(batches):
            batch = batches[self.batches_done]
            self.batches_done += 1
            yield batch

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first batch, unless it is the epoch in progress."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches_done = 0

    def state_dict(self, consumed_batches: int | None = None) -> dict[str, int]:
        """The position to resume from.

        `consumed_batches`: batches of the current epoch the training loop has really used; by
        default the number yielded, which runs ahead when a DataLoader prefetches with workers.
        """
        batches_done = self.batches_done if consumed_batches is None else consumed_batches
        if not 0 <= batches_done <= len(self):
            raise ValueError(f"consumed_batches must be in [0, {len(self)}] for epoch {self.epoch}; got {batches_done}")
        return {
            "epoch": self.epoch,
            "batches_done": batches_done,
            "seed": self.seed,
            "num_examples": int(self.durations.size),
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a `state_dict()` taken with the same data, seed and world size."""
        expected = {"seed": self.seed, "num_examples": int(self.durations.size), "world_size": self.world_size}
        mismatched = {key: (state[key], value) for key, value in expected.items() if state.get(key) != value}
        if mismatched:
            details = ", ".join(f"{key}: saved {saved}, now {now}" for key, (saved, now) in mismatched.items())
            raise ValueError(
                f"cannot resume this sampler from a state of a different run ({details}); resume with the same "
                "corpus, seed and number of processes, or start the epoch afresh"
            )
        self.epoch = int(state["epoch"])
        self.batches_done = int(state["batches_done"])
