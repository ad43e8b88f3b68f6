"""Transcripts with character or word timestamps from tokens and the encoder frame of each token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..tokenization_mt2kd import MT2KDTokenizer

__all__ = ["TIMESTAMP_LEVELS", "check_timestamp_level", "transcript_with_timestamps"]

TIMESTAMP_LEVELS = ("char", "word")


def check_timestamp_level(return_timestamps: str | bool | None) -> str | None:
    """`"char"`, `"word"` or `None` (for `None` / `False`); anything else is refused."""
    if return_timestamps is None or return_timestamps is False:
        return None
    if return_timestamps not in TIMESTAMP_LEVELS:
        raise ValueError(
            f"return_timestamps must be 'char' or 'word' (or None for none); got {return_timestamps!r}"
        )
    return return_timestamps


def transcript_with_timestamps(
    tokenizer: MT2KDTokenizer,
    tokens: Sequence[int],
    frames: Sequence[int],
    samples_per_frame: int,
    sampling_rate: int,
    return_timestamps: str | None = None,
) -> dict[str, Any]:
    """Decode transducer tokens (repeats kept) into `{"text"}`, plus `"chunks"` when timestamps are asked for.

    Args:
        tokenizer: the BPE tokenizer of the model.
        tokens: emitted token ids, no blanks.
        frames: the encoder frame of each token, counted from the start of the recording.
        samples_per_frame: audio samples per encoder frame (`config.inputs_to_logits_ratio`, 640).
        sampling_rate: rate of the audio in Hz (16000): a frame lasts `samples_per_frame / sampling_rate` s.
        return_timestamps: `"char"`, `"word"` or `None`.

    Returns:
        `{"text": str}` and with timestamps `"chunks"`: `[{"text": word_or_char, "timestamp": (start_s, end_s)}]`, as
        the transformers ASR pipeline returns them. A character or word starts at the frame of its first token and
        ends one frame after the frame of its last token.
    """
    if len(tokens) != len(frames):
        raise ValueError(f"got {len(tokens)} tokens but {len(frames)} frames; pass one frame per token")
    if return_timestamps is None:
        return {"text": tokenizer.decode(tokens, group_tokens=False)}
    decoded = tokenizer.decode(
        tokens,
        group_tokens=False,
        output_char_offsets=return_timestamps == "char",
        output_word_offsets=return_timestamps == "word",
    )
    # With group_tokens=False the offsets index `tokens`; the frames give their time.
    offsets = decoded.char_offsets if return_timestamps == "char" else decoded.word_offsets
    chunks = [
        {
            "text": offset[return_timestamps],
            "timestamp": (
                frames[offset["start_offset"]] * samples_per_frame / sampling_rate,
                (frames[offset["end_offset"] - 1] + 1) * samples_per_frame / sampling_rate,
            ),
        }
        for offset in offsets
    ]
    return {"text": decoded.text, "chunks": chunks}
