"""`mt2kd transcribe --streaming`: decode each file as a live stream and print the partial transcripts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import numpy as np

__all__ = ["streaming_transcriber"]


def streaming_transcriber(
    asr, sampling_rate: int, piece_s: float, timestamps: str | None, out: TextIO = sys.stderr
) -> Callable[[Sequence[np.ndarray]], list[dict[str, Any]]]:
    """A per-batch transcribe function for `run_per_file`: each waveform is fed to the `mt2kd-streaming-asr`
    pipeline `asr` in pieces of `piece_s` seconds; every new partial transcript is printed to `out` as
    `[seconds of audio] text`, the final result is returned ({"text"[, "chunks"]})."""
    if piece_s <= 0:
        raise ValueError(f"--stream_chunk_s must be a positive number of seconds, e.g. 0.1; got {piece_s}")
    piece = max(int(round(piece_s * sampling_rate)), 1)

    def transcribe(waveforms: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        results = []
        for waveform in waveforms:
            pieces = (waveform[start : start + piece] for start in range(0, len(waveform), piece))
            shown = None
            for partial in asr.stream(pieces, sampling_rate=sampling_rate, return_timestamps=timestamps):
                if partial["text"] != shown or partial["is_final"]:
                    marker = "final" if partial["is_final"] else f"{partial['audio_s']:.2f}s"
                    print(f"[{marker}] {partial['text']}", file=out, flush=True)
                    shown = partial["text"]
            results.append({key: value for key, value in partial.items() if key in ("text", "chunks")})
        return results

    return transcribe
