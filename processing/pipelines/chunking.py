"""Long-form audio as overlapping chunks, and the chunks' decoded tokens merged back by frame position.

Each chunk is decoded with `stride_left` / `stride_right` samples of context on either side; only the tokens whose
frame lies between the strides are kept. Chunk starts and strides are whole numbers of encoder frames
(`samples_per_frame`, 640 samples = 40 ms for MT2KD), so the kept spans of consecutive chunks tile the recording
exactly: every frame is kept by exactly one chunk, and the merged frames never go back in time. This is the layout
of the transformers ASR pipeline's `chunk_length_s` / `stride_length_s`, applied to tokens with frame positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

__all__ = ["AudioChunk", "ChunkLayout", "ChunkTokens", "merge_chunk_tokens"]


@dataclass(frozen=True)
class ChunkLayout:
    """Chunk and stride sizes in samples, each a multiple of `samples_per_frame`.

    Args:
        chunk_samples: samples per chunk, strides included.
        stride_left: context samples before the kept span (not for the first chunk).
        stride_right: context samples after the kept span (not for the last chunk).
    """

    chunk_samples: int
    stride_left: int
    stride_right: int

    @classmethod
    def from_seconds(
        cls,
        chunk_length_s: float,
        stride_length_s: float | Sequence[float] | None,
        sampling_rate: int,
        samples_per_frame: int,
    ) -> ChunkLayout:
        """Sizes in seconds, rounded to whole frames.

        Args:
            chunk_length_s: chunk duration in seconds, strides included.
            stride_length_s: context in seconds on each side, or `(left, right)`; `None` = `chunk_length_s / 6`
                (the transformers ASR pipeline's default).
            sampling_rate: rate of the audio in Hz.
            samples_per_frame: samples per encoder frame (`config.inputs_to_logits_ratio`).
        """
        if isinstance(chunk_length_s, bool) or not isinstance(chunk_length_s, (int, float)) or not (
            math.isfinite(chunk_length_s) and chunk_length_s > 0
        ):
            raise ValueError(
                f"chunk_length_s must be a number of seconds > 0 (e.g. 30), or None / 0 for the whole recording in "
                f"one pass; got {chunk_length_s!r}"
            )
        if stride_length_s is None:
            stride_length_s = chunk_length_s / 6
        if isinstance(stride_length_s, (int, float)):
            stride_length_s = (stride_length_s, stride_length_s)
        if len(stride_length_s) != 2 or min(stride_length_s) < 0:
            raise ValueError(
                f"stride_length_s must be seconds >= 0 or a (left, right) pair of them; got {stride_length_s!r}"
            )

        def to_samples(seconds: float) -> int:
            return int(round(seconds * sampling_rate / samples_per_frame)) * samples_per_frame

        layout = cls(to_samples(chunk_length_s), to_samples(stride_length_s[0]), to_samples(stride_length_s[1]))
        if layout.chunk_samples <= layout.stride_left + layout.stride_right:
            raise ValueError(
                f"chunk_length_s={chunk_length_s} leaves nothing between the strides {tuple(stride_length_s)} s; "
                "pass a chunk longer than the two strides together (e.g. chunk_length_s=10 with the default stride)"
            )
        return layout

    def chunks(self, num_samples: int) -> Iterator[AudioChunk]:
        """The chunks of a recording of `num_samples` samples, first to last (lazily)."""
        step = self.chunk_samples - self.stride_left - self.stride_right
        for start in range(0, num_samples, step):
            end = min(start + self.chunk_samples, num_samples)
            is_last = end >= num_samples
            chunk = AudioChunk(
                start=start,
                end=end,
                stride_left=0 if start == 0 else self.stride_left,
                stride_right=0 if is_last else self.stride_right,
            )
            if end - start > chunk.stride_left:  # a tail inside the previous chunk's right context adds nothing
                yield chunk
            if is_last:
                return


@dataclass(frozen=True)
class AudioChunk:
    """One chunk of a recording, in samples: `[start, end)`, of which the first `stride_left` and the last
    `stride_right` samples are context only."""

    start: int
    end: int
    stride_left: int = 0
    stride_right: int = 0

    def as_tensors(self) -> dict[str, torch.Tensor]:
        """The chunk as `(1,)` int64 tensors, so that pipeline batching stacks and splits it like the features."""
        return {
            "chunk_start": torch.tensor([self.start]),
            "chunk_end": torch.tensor([self.end]),
            "chunk_stride_left": torch.tensor([self.stride_left]),
            "chunk_stride_right": torch.tensor([self.stride_right]),
        }

    @classmethod
    def from_tensors(cls, values: dict[str, torch.Tensor]) -> AudioChunk:
        """Inverse of [`~AudioChunk.as_tensors`] (for one chunk)."""
        return cls(
            start=int(values["chunk_start"]),
            end=int(values["chunk_end"]),
            stride_left=int(values["chunk_stride_left"]),
            stride_right=int(values["chunk_stride_right"]),
        )


@dataclass(frozen=True)
class ChunkTokens:
    """The tokens decoded from one chunk and the chunk-relative encoder frame at which each was emitted."""

    chunk: AudioChunk
    tokens: Sequence[int]
    frames: Sequence[int]


def merge_chunk_tokens(pieces: Sequence[ChunkTokens], samples_per_frame: int) -> tuple[list[int], list[int]]:
    """Join the tokens of consecutive chunks, keeping from each chunk those emitted between its strides.

    Args:
        pieces: the chunks of one recording, in order.
        samples_per_frame: samples per encoder frame; chunk starts and strides must be multiples of it.

    Returns:
        `(tokens, frames)`: the kept token ids and their encoder frames counted from the start of the recording.
    """
    tokens, frames = [], []
    for piece in pieces:
        chunk = piece.chunk
        if chunk.start % samples_per_frame or chunk.stride_left % samples_per_frame:
            raise ValueError(
                f"chunk start {chunk.start} and left stride {chunk.stride_left} must be multiples of "
                f"{samples_per_frame} samples (one encoder frame); build chunks with ChunkLayout"
            )
        first_kept = chunk.stride_left // samples_per_frame
        end_kept = (chunk.end - chunk.start - chunk.stride_right) / samples_per_frame
        offset = chunk.start // samples_per_frame
        for token, frame in zip(piece.tokens, piece.frames, strict=True):
            if first_kept <= frame < end_kept:
                tokens.append(int(token))
                frames.append(offset + int(frame))
    return tokens, frames
