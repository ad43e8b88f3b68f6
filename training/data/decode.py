"""Decoding one dataset example's audio, turning every kind of bad file into a counted skip."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import soundfile

from processing_mt2kd.audio_io import AudioDecodeError, load_audio
from training_mt2kd.data.health import SkipReason


# Float audio lies in [-1, 1]; samples far beyond are corrupt or were written unscaled (and from about 1e16 the
# filter-bank power overflows float32, so the features would not be finite).
MAX_SAMPLE_MAGNITUDE = 1e6


class SkippedExample(Exception):
    """An example that cannot be trained on; `reason` says why (see `DataHealth`)."""

    def __init__(self, reason: SkipReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_waveform(audio: Any, sample_rate: int = 16000, max_duration_s: float | None = None) -> np.ndarray:
    """Decode an `Audio(decode=False)` value (`{"bytes", "path"}`), a path or bytes to mono float32.

    Returns `(samples,)` at `sample_rate` Hz (other rates are resampled). Raises `SkippedExample`
    for unreadable, empty, non-finite (or beyond ±`MAX_SAMPLE_MAGNITUDE`) or longer-than-`max_duration_s` audio.
    """
    source = _source_of(audio)
    header_duration_s = _header_duration_s(source)
    if max_duration_s is not None and header_duration_s is not None and header_duration_s > max_duration_s:
        # Checked on the header, before decoding: a manifest may understate a file's length, and a 2-hour
        # recording decoded only to be dropped would cost gigabytes in every data worker.
        raise SkippedExample(
            SkipReason.TOO_LONG, f"{header_duration_s:.2f} s (file header) exceeds max_duration_s {max_duration_s}"
        )
    try:
        waveform, _ = load_audio(source, target_sample_rate=sample_rate, mono=True)
    except (AudioDecodeError, OSError, ValueError) as error:
        reason = SkipReason.EMPTY if _holds_no_samples(source) else SkipReason.UNREADABLE
        raise SkippedExample(reason, str(error)) from error
    if waveform.size == 0:
        raise SkippedExample(SkipReason.EMPTY, "decoded to 0 samples")
    if not np.isfinite(waveform).all():
        raise SkippedExample(SkipReason.NON_FINITE, "holds NaN or infinite samples")
    peak = float(np.abs(waveform).max())
    if peak > MAX_SAMPLE_MAGNITUDE:
        raise SkippedExample(SkipReason.NON_FINITE, f"samples reach {peak:.3g}, far outside [-1, 1]")
    if max_duration_s is not None and waveform.shape[0] > max_duration_s * sample_rate:
        raise SkippedExample(
            SkipReason.TOO_LONG, f"{waveform.shape[0] / sample_rate:.2f} s exceeds max_duration_s {max_duration_s}"
        )
    return waveform


def _source_of(audio: Any) -> str | bytes:
    """The bytes (preferred, as stored by a Hub dataset) or the path of an audio value."""
    if isinstance(audio, Mapping):
        if audio.get("bytes") is not None:
            return audio["bytes"]
        if audio.get("path"):
            return audio["path"]
        raise SkippedExample(SkipReason.UNREADABLE, "audio value has neither bytes nor a path")
    if isinstance(audio, (str, os.PathLike, bytes, bytearray)):
        return audio
    raise SkippedExample(SkipReason.UNREADABLE, f"audio value of type {type(audio).__name__} is not a path or bytes")


def _header_duration_s(source: str | bytes) -> float | None:
    """Duration in seconds that the file's header declares; None when the header cannot be read."""
    try:
        info = soundfile.info(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    except Exception:  # noqa: BLE001 - decoding reports unreadable files with the reason
        return None
    return info.frames / info.samplerate if info.samplerate > 0 else None


def _holds_no_samples(source: str | bytes) -> bool:
    """True for a zero-byte file or a well-formed header with zero frames."""
    try:
        if isinstance(source, (bytes, bytearray)):
            return len(source) == 0 or soundfile.info(io.BytesIO(bytes(source))).frames == 0
        return os.path.getsize(source) == 0 or soundfile.info(source).frames == 0
    except Exception:  # noqa: BLE001 - an unreadable header means "unreadable", not "empty"
        return False
