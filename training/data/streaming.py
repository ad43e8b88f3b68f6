"""Duration-bucketed batches for streaming corpora, built buffer by buffer, resumable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np

from training_mt2kd.data.sampler import check_rank, equalise_for_ranks, pack_by_duration


class BufferedBucketBatcher:
    """Batches of examples (dicts with a `duration_s` key) from a stream such as an `IterableDataset`.

    Reads `buffer_size` examples, sorts them by duration, packs batches of at most
    `max_duration_s` seconds (an example longer than that forms a batch by itself; filter with
    `CorpusSpec.max_duration_s`), shuffles the batch order from `(seed, epoch, buffer number)` and
    yields them. As with `DurationBucketSampler`, every rank forms the same batches from the whole
    stream, pads each buffer's batch count to a multiple of `world_size`, and takes every
    world_size-th batch, so all ranks run the same number of steps.

    Iterate it in the training process (not inside DataLoader workers) so that its position is
    the one the loop consumed. Position = examples consumed before the current buffer plus the
    batches already yielded from it; resuming re-reads (without decoding) the consumed examples.
    """

    def __init__(
        self,
        examples: Iterable[dict[str, Any]],
        max_duration_s: float,
        buffer_size: int = 2000,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1 example; got {buffer_size}")
        if max_duration_s <= 0:
            raise ValueError(f"max_duration_s must be positive seconds; got {max_duration_s}")
        check_rank(rank, world_size)
        self.examples = examples
        self.max_duration_s = float(max_duration_s)
        self.buffer_size = buffer_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.examples_consumed = 0
        self.batches_done_in_buffer = 0
        self.finished = False

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        if self.finished:
            self.set_epoch(self.epoch + 1)
        if hasattr(self.examples, "set_epoch"):
            self.examples.set_epoch(self.epoch)  # reshuffles an IterableDataset's shards per epoch
        stream = islice(iter(self.examples), self.examples_consumed, None)
        while buffer := list(islice(stream, self.buffer_size)):
            batches = self._plan_buffer(buffer, buffer_number=self.examples_consumed // self.buffer_size)
            mine = batches[self.rank :: self.world_size]
            while self.batches_done_in_buffer < len(mine):
                batch = mine[self.batches_done_in_buffer]
                self.batches_done_in_buffer += 1
                yield batch
            self.examples_consumed += len(buffer)
            self.batches_done_in_buffer = 0
        self.finished = True

    def _plan_buffer(self, buffer: list[dict[str, Any]], buffer_number: int) -> list[list[dict[str, Any]]]:
        durations = np.asarray([example["duration_s"] for example in buffer], dtype=np.float64)
        order = np.argsort(durations, kind="stable")
        batches = pack_by_duration(order, durations, self.max_duration_s)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, buffer_number])
            batches = [batches[position] for position in rng.permutation(len(batches))]
        batches = equalise_for_ranks(batches, self.world_size, drop_last=False)
        return [[buffer[index] for index in batch] for batch in batches]

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from the beginning of the stream, unless it is the epoch in progress."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.examples_consumed = 0
            self.batches_done_in_buffer = 0
            self.finished = False

    def state_dict(self) -> dict[str, Any]:
        """The position to resume from (exact when the loop consumes batches as they are yielded)."""
        return {
            "epoch": self.epoch,
            "examples_consumed": self.examples_consumed,
            "batches_done_in_buffer": self.batches_done_in_buffer,
            "finished": self.finished,
            "seed": self.seed,
            "buffer_size": self.buffer_size,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()` taken with the same stream, seed, buffer size and world size."""
        expected = {"seed": self.seed, "buffer_size": self.buffer_size, "world_size": self.world_size}
        mismatched = {key: (state.get(key), value) for key, value in expected.items() if state.get(key) != value}
        if mismatched:
            details = ", ".join(f"{key}: saved {saved}, now {now}" for key, (saved, now) in mismatched.items())
            raise ValueError(f"cannot resume this batcher from a state of a different run ({details})")
        self.epoch = int(state["epoch"])
        self.examples_consumed = int(state["examples_consumed"])
        self.batches_done_in_buffer = int(state["batches_done_in_buffer"])
        self.finished = bool(state["finished"])
