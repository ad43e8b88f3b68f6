"""Teacher targets computed once and kept on disk, read back in the form the teachers return.

Layout of a cache folder (several ranks may write into one folder at the same time):

    targets-rank00000-000000.safetensors   one shard: up to `shard_size` utterances of one rank
    targets-rank00000-000001.safetensors
    targets-rank00001-000000.safetensors   another rank's shards
    index-rank00000.json                   each rank's list of shards and the utterance ids in them

A shard stores one float16 tensor per utterance and target, named "<target_key>/<utterance id>":
`(frames, dim)` for frame-level targets (the length is the first dimension) and `(dim,)` for
clip-level ones. Shards and indexes are written to a temporary file and renamed into place, so an
interrupted run leaves no partial file; a shard that was renamed but not yet indexed is picked up
from its own header. A re-run skips every utterance id already in the folder, whichever rank wrote it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from training_mt2kd.recipe.teachers import Teacher, TeacherTargets

FORMAT_VERSION = 1
SHARD_NAME = re.compile(r"^targets-rank(\d{5})-(\d{6})\.safetensors$")
INDEX_NAME = re.compile(r"^index-rank(\d{5})\.json$")
TEMPORARY_SUFFIX = ".tmp"


def compute_targets(
    teachers: Iterable[Teacher], waveforms: torch.Tensor, waveform_lengths: torch.Tensor
) -> dict[str, TeacherTargets]:
    """Every teacher's targets for one batch of clean audio, keyed by `target_key`.

    Args:
        waveforms: `(batch, samples)` float at 16 kHz, zero-padded.
        waveform_lengths: `(batch,)` int64 valid samples.
    """
    targets: dict[str, TeacherTargets] = {}
    for teacher in teachers:
        if teacher.target_key in targets:
            raise ValueError(
                f"two teachers produce the {teacher.target_key!r} target (the second is {teacher.name!r}); "
                "use one teacher per target"
            )
        targets[teacher.target_key] = teacher(waveforms, waveform_lengths)
    return targets


@dataclass(frozen=True)
class TargetSpec:
    """What is stored for one target: frame-level `(frames, dim)` or clip-level `(dim,)`."""

    frame_level: bool
    dim: int


def _shard_name(rank: int, number: int) -> str:
    return f"targets-rank{rank:05d}-{number:06d}.safetensors"


def _index_name(rank: int) -> str:
    return f"index-rank{rank:05d}.json"


def _tensor_name(target_key: str, utterance_id: str) -> str:
    return f"{target_key}/{utterance_id}"


def _specs_to_json(specs: Mapping[str, TargetSpec]) -> dict:
    return {key: {"frame_level": spec.frame_level, "dim": spec.dim} for key, spec in specs.items()}


def _specs_from_json(data: Mapping) -> dict[str, TargetSpec]:
    return {key: TargetSpec(bool(value["frame_level"]), int(value["dim"])) for key, value in data.items()}


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(temporary_path)`, then rename over `path`: readers never see a partial file."""
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    write(temporary)
    os.replace(temporary, path)


def _merge_specs(known: dict[str, TargetSpec], new: Mapping[str, TargetSpec], source: str) -> None:
    """Add `new` to `known`, refusing a target whose shape kind or width differs from what is stored."""
    for key, spec in new.items():
        stored = known.setdefault(key, spec)
        if stored != spec:
            raise ValueError(
                f"target {key!r} is stored as {stored} but {source} has {spec}; "
                "one cache folder holds targets of one teacher setup, use a new folder for another"
            )


@dataclass
class _Listing:
    """Everything already in a cache folder: which shard holds each id, and the target specs."""

    shard_of: dict[str, str] = field(default_factory=dict)
    shard_ids: dict[str, list[str]] = field(default_factory=dict)
    specs: dict[str, TargetSpec] = field(default_factory=dict)

    def add_shard(self, shard: str, ids: list[str], specs: dict[str, TargetSpec], directory: Path) -> None:
        for utterance_id in ids:
            if utterance_id in self.shard_of:
                raise ValueError(
                    f"utterance id {utterance_id!r} is in both {self.shard_of[utterance_id]} and {shard} of "
                    f"{directory}; ids must be unique across ranks (shard the dataset by rank), "
                    "delete one of the shards and its index entry"
                )
            self.shard_of[utterance_id] = shard
        self.shard_ids[shard] = ids
        _merge_specs(self.specs, specs, f"{directory / shard}")


def _read_shard_header(path: Path) -> tuple[list[str], dict[str, TargetSpec]]:
    """Utterance ids (in write order) and target specs of a finished shard, from its header only."""
    with safe_open(str(path), framework="pt") as shard:
        metadata = shard.metadata() or {}
    if "ids" not in metadata or "targets" not in metadata:
        raise ValueError(f"{path} is not a target-cache shard (no 'ids'/'targets' metadata); move it out of the folder")
    return json.loads(metadata["ids"]), _specs_from_json(json.loads(metadata["targets"]))


def _list_directory(directory: Path) -> _Listing:
    """Shards named by the rank indexes, plus finished shards no index names yet (read from their headers)."""
    listing = _Listing()
    names = sorted(os.listdir(directory))
    for name in names:
        if INDEX_NAME.match(name):
            index = json.loads((directory / name).read_text(encoding="utf-8"))
            specs = _specs_from_json(index["targets"])
            for shard, ids in index["shards"].items():
                if (directory / shard).exists():
                    listing.add_shard(shard, ids, specs, directory)
    for name in names:
        if SHARD_NAME.match(name) and name not in listing.shard_ids:
            ids, specs = _read_shard_header(directory / name)
            listing.add_shard(name, ids, specs, directory)
    return listing


class TargetCacheWriter:
    """Writes one rank's teacher targets into a cache folder, resuming where an earlier run stopped.

    Use as a context manager: a clean exit writes the last, partly filled shard; an exception
    drops it (those utterances are recomputed on the next run).

    Args:
        directory: the cache folder (created if missing).
        rank: this process's rank (`accelerator.process_index`); each rank names its own shards and
            index, so ranks never write the same file.
        shard_size: utterances per shard.
    """

    def __init__(self, directory: str | os.PathLike, *, rank: int = 0, shard_size: int = 1000) -> None:
        if rank < 0 or shard_size < 1:
            raise ValueError(f"need rank >= 0 and shard_size >= 1; got rank={rank}, shard_size={shard_size}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rank = rank
        self.shard_size = shard_size
        own_temporary = re.compile(rf"^(targets|index)-rank{rank:05d}.*{re.escape(TEMPORARY_SUFFIX)}$")
        for name in os.listdir(self.directory):
            if own_temporary.match(name):  # left by an interrupted write of this rank
                (self.directory / name).unlink()
        listing = _list_directory(self.directory)
        self.specs = listing.specs
        self._written = set(listing.shard_of)
        self._own_shards = {
            shard: ids for shard, ids in listing.shard_ids.items() if int(SHARD_NAME.match(shard).group(1)) == rank
        }
        self._next_shard = 1 + max((int(SHARD_NAME.match(shard).group(2)) for shard in self._own_shards), default=-1)
        self._buffer: dict[str, dict[str, torch.Tensor]] = {}
        if self._own_shards:
            self._write_index()  # records shards that were renamed into place but not yet indexed

    def __enter__(self) -> TargetCacheWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()

    def __contains__(self, utterance_id: str) -> bool:
        return utterance_id in self._written or utterance_id in self._buffer

    @property
    def num_written(self) -> int:
        """Utterances in the folder (all ranks, as of opening) plus those this writer wrote or buffered."""
        return len(self._written) + len(self._buffer)

    def pending(self, ids: Sequence[str]) -> list[int]:
        """Positions in `ids` of the utterances that still need targets."""
        return [position for position, utterance_id in enumerate(ids) if utterance_id not in self]

    def add(self, ids: Sequence[str], targets: Mapping[str, TeacherTargets]) -> None:
        """Buffer one batch of targets (as `compute_targets` returns them); ids already stored are skipped."""
        for key, target in targets.items():
            if target.values.shape[0] != len(ids):
                raise ValueError(f"{len(ids)} ids but {target.values.shape[0]} rows of {key!r} targets")
            if "/" in key:
                raise ValueError(f"target key {key!r} must not contain '/' (it separates key and id in shards)")
        specs = {key: TargetSpec(target.is_frame_level, target.values.shape[-1]) for key, target in targets.items()}
        if self.specs and set(specs) != set(self.specs):
            raise ValueError(
                f"this cache holds targets {sorted(self.specs)} but got {sorted(specs)}; "
                "use the same teachers for a whole cache folder"
            )
        _merge_specs(self.specs, specs, "this batch")
        halves = {key: target.values.detach().to("cpu", torch.float16) for key, target in targets.items()}
        for position, utterance_id in enumerate(ids):
            if utterance_id in self:
                continue
            entry = {}
            for key, target in targets.items():
                values = halves[key][position]
                if target.lengths is not None:
                    values = values[: int(target.lengths[position])]
                if not bool(torch.isfinite(values).all()):
                    raise ValueError(
                        f"{key!r} targets of utterance {utterance_id!r} overflow float16 "
                        f"(max |value| {target.values[position].abs().max().item():.3g}); scale the teacher's output"
                    )
                entry[key] = values.clone()  # its own storage: safetensors refuses views of one tensor
            self._buffer[utterance_id] = entry
            if len(self._buffer) >= self.shard_size:
                self.flush()

    def flush(self) -> None:
        """Write the buffered utterances as one shard (however few) and update this rank's index."""
        if not self._buffer:
            return
        shard = _shard_name(self.rank, self._next_shard)
        ids = list(self._buffer)
        tensors = {
            _tensor_name(key, utterance_id): values
            for utterance_id, entry in self._buffer.items()
            for key, values in entry.items()
        }
        metadata = {"ids": json.dumps(ids), "targets": json.dumps(_specs_to_json(self.specs))}
        _write_atomically(self.directory / shard, lambda path: save_file(tensors, str(path), metadata=metadata))
        self._own_shards[shard] = ids
        self._written.update(ids)
        self._buffer.clear()
        self._next_shard += 1
        self._write_index()

    def close(self) -> None:
        self.flush()

    def _write_index(self) -> None:
        index = {
            "format_version": FORMAT_VERSION,
            "rank": self.rank,
            "targets": _specs_to_json(self.specs),
            "shards": self._own_shards,
        }
        text = json.dumps(index, indent=1)
        _write_atomically(self.directory / _index_name(self.rank), lambda path: path.write_text(text, encoding="utf-8"))


def extract_targets(
    teachers: Sequence[Teacher],
    batches: Iterable[tuple[Sequence[str], torch.Tensor, torch.Tensor]],
    writer: TargetCacheWriter,
) -> int:
    """Run the teachers over `batches` of `(ids, waveforms (batch, samples), waveform_lengths (batch,))`
    and store their targets; utterances already in the cache are not recomputed.

    Returns:
        The number of utterances newly computed.
    """
    computed = 0
    for ids, waveforms, waveform_lengths in batches:
        pending = writer.pending(ids)
        if not pending:
            continue
        if len(pending) < len(ids):
            rows = torch.tensor(pending)
            waveform_lengths = waveform_lengths[rows]
            waveforms = waveforms[rows, : int(waveform_lengths.max())]
        targets = compute_targets(teachers, waveforms, waveform_lengths)
        writer.add([ids[position] for position in pending], targets)
        computed += len(pending)
    return computed


class TargetCache:
    """Reads a cache folder written by `TargetCacheWriter` (by any number of ranks).

    `get(ids)` returns the same `dict[target_key, TeacherTargets]` as `compute_targets`, with
    float32 values (stored as float16), so a training loop can take targets from either.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(
                f"no target cache at {self.directory}; extract targets with TargetCacheWriter first"
            )
        listing = _list_directory(self.directory)
        self._shard_of = listing.shard_of
        self.specs = listing.specs

    def __len__(self) -> int:
        return len(self._shard_of)

    def __contains__(self, utterance_id: str) -> bool:
        return utterance_id in self._shard_of

    @property
    def ids(self) -> list[str]:
        return list(self._shard_of)

    def get(self, ids: Sequence[str], device: torch.device | str = "cpu") -> dict[str, TeacherTargets]:
        """Targets of `ids`, in that order: frame-level `values` `(batch, max_frames, dim)` zero-padded
        with `lengths` `(batch,)`, clip-level `values` `(batch, dim)`."""
        if not ids:
            raise ValueError("get() needs at least one utterance id")
        missing = [utterance_id for utterance_id in ids if utterance_id not in self._shard_of]
        if missing:
            raise KeyError(
                f"{len(missing)} utterance ids are not in the target cache {self.directory}, e.g. {missing[:3]}; "
                "run target extraction over them"
            )
        by_shard: dict[str, list[int]] = {}
        for position, utterance_id in enumerate(ids):
            by_shard.setdefault(self._shard_of[utterance_id], []).append(position)
        rows: dict[str, list[torch.Tensor | None]] = {key: [None] * len(ids) for key in self.specs}
        for shard, positions in by_shard.items():
            with safe_open(str(self.directory / shard), framework="pt") as handle:
                for position in positions:
                    for key in self.specs:
                        rows[key][position] = handle.get_tensor(_tensor_name(key, ids[position])).float()
        targets = {}
        for key, spec in self.specs.items():
            if spec.frame_level:
                lengths = torch.tensor([row.shape[0] for row in rows[key]], dtype=torch.long)
                values = torch.nn.utils.rnn.pad_sequence(rows[key], batch_first=True)
                targets[key] = TeacherTargets(values, lengths).to(device)
            else:
                targets[key] = TeacherTargets(torch.stack(rows[key])).to(device)
        return targets
