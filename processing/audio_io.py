"""Audio decoding (soundfile only), down-mixing and resampling.

Decoding goes through `soundfile` (libsndfile): WAV, FLAC, Ogg Vorbis/Opus and MP3 (libsndfile >= 1.1), with no
torchcodec or ffmpeg. Every other module of the package reuses `downmix_to_mono`, `pcm_to_float` and `resample`
from here, so each of those jobs has exactly one implementation.
"""

from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile
import torch
import torchaudio.functional

__all__ = ["AudioDecodeError", "MAX_CHANNELS", "downmix_to_mono", "load_audio", "pcm_to_float", "resample"]

AudioSource = str | os.PathLike | bytes | BinaryIO

# torchaudio's windowed-sinc resampler builds a kernel of about (target / g) x (orig / g) weights, g the rates'
# greatest common divisor: a few thousand for the usual rates, but 16000 x 44101 (2.8 GB) for a 44101 Hz file. Rates
# without a large common divisor are resampled at the nearest ratio whose kernel stays within this many weights
# (a relative rate error of a few parts per million, far below audibility).
MAX_RESAMPLING_KERNEL = 2_000_000

# A 2-D array whose shorter axis is longer than this is not read as (channels, samples): it is far more likely a
# stacked batch, which must not be silently averaged into one recording.
MAX_CHANNELS = 8


class AudioDecodeError(ValueError):
    """An audio file or byte string that soundfile cannot decode (corrupt, empty or an unsupported format)."""


def load_audio(
    source: AudioSource, target_sample_rate: int | None = 16000, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Decode an audio file, byte string or binary file object with soundfile.

    Args:
        source: a path, the encoded bytes of a file, or a binary file-like object.
        target_sample_rate: resample to this rate in Hz; `None` keeps the file's own rate.
        mono: average the channels into one.

    Returns:
        `(waveform, sample_rate)`: float32 samples in [-1, 1], shaped `(samples,)` when `mono`, else
        `(channels, samples)` (also for a one-channel file); and the rate of the returned waveform in Hz.
    """
    name, opened = _open_source(source)
    try:
        waveform, sample_rate = soundfile.read(opened, dtype="float32", always_2d=True)
    except RuntimeError as error:  # soundfile.LibsndfileError: unknown format, corrupt or truncated data
        raise AudioDecodeError(
            f"cannot decode {name}: {str(error).rstrip('.')}. soundfile (libsndfile "
            f"{soundfile.__libsndfile_version__}) reads WAV, FLAC, Ogg Vorbis/Opus and MP3; convert other formats "
            "(m4a, aac, webm, ...) to one of these first, e.g. `ffmpeg -i input.m4a output.flac`"
        ) from error
    if waveform.shape[0] == 0:
        raise AudioDecodeError(f"{name} holds no audio (0 samples decoded)")
    # soundfile returns (samples, channels)
    waveform = downmix_to_mono(waveform, channel_axis=1) if mono else np.ascontiguousarray(waveform.T)
    if target_sample_rate is not None and target_sample_rate != sample_rate:
        waveform = resample(waveform, sample_rate, target_sample_rate)
        sample_rate = target_sample_rate
    return waveform, sample_rate


def _open_source(source: AudioSource) -> tuple[str, str | BinaryIO]:
    """A name for error messages and something soundfile can read; rejects missing and empty inputs."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"audio file not found: {str(path)!r} (no such file, or not a regular file)")
        if path.stat().st_size == 0:
            raise AudioDecodeError(f"audio file {str(path)!r} is empty (0 bytes)")
        return repr(str(path)), str(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise AudioDecodeError("the audio bytes are empty (0 bytes); pass the full encoded file")
        return f"the given audio bytes ({len(source)} bytes)", io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return (repr(name) if isinstance(name, str) else "the given file object"), source
    raise TypeError(
        f"cannot load audio from a {type(source).__name__}; pass a path, the file's bytes or a binary file object"
    )


def downmix_to_mono(waveform: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """Average the channels of a 1-D `(samples,)` or 2-D waveform into `(samples,)`.

    Args:
        waveform: `(samples,)`, `(channels, samples)` or `(samples, channels)`.
        channel_axis: the channel axis of a 2-D waveform; `None` takes the shorter axis (audio has far more samples
            than channels), which must then hold at most `MAX_CHANNELS` channels.
    """
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim != 2:
        raise ValueError(
            f"expected a waveform shaped (samples,), (channels, samples) or (samples, channels); got shape "
            f"{tuple(waveform.shape)}"
        )
    if channel_axis is None:
        channel_axis = int(np.argmin(waveform.shape))
        if waveform.shape[0] == waveform.shape[1] or waveform.shape[channel_axis] > MAX_CHANNELS:
            raise ValueError(
                f"cannot tell channels from samples in a waveform of shape {tuple(waveform.shape)}: a 2-D array is "
                f"one recording with at most {MAX_CHANNELS} channels on its shorter axis; pass a batch of recordings "
                "as a list of arrays, not a stacked 2-D array"
            )
    return waveform.mean(axis=channel_axis, dtype=np.float32)


def pcm_to_float(waveform: np.ndarray) -> np.ndarray:
    """Integer PCM samples as float32 in [-1, 1] (int16 / 32768, int32 / 2**31, ...); float input becomes float32.

    Accepts int8, int16, int32 and unsigned 8-bit (offset 128) PCM. int64 is refused: no audio format stores
    64-bit samples, so such arrays are usually integer lists that were never PCM.
    """
    if np.issubdtype(waveform.dtype, np.floating):
        return waveform.astype(np.float32, copy=False)
    if waveform.dtype == np.uint8:
        return (waveform.astype(np.float32) - 128.0) / 128.0
    if waveform.dtype in (np.int8, np.int16, np.int32):
        full_scale = float(2 ** (8 * waveform.dtype.itemsize - 1))
        return waveform.astype(np.float32) / full_scale
    raise ValueError(
        f"audio samples of dtype {waveform.dtype} are not supported; pass float samples in [-1, 1] or int8/int16/"
        "int32/uint8 PCM (e.g. `np.asarray(samples, dtype=np.int16)` for 16-bit PCM values)"
    )


def resample(waveform: np.ndarray | torch.Tensor, orig_sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Resample along the last axis with `torchaudio.functional.resample` (windowed sinc); returns float32 numpy."""
    for name, rate in (("orig_sample_rate", orig_sample_rate), ("target_sample_rate", target_sample_rate)):
        if not float(rate).is_integer() or rate <= 0:
            raise ValueError(f"{name} must be a positive whole number of Hz, e.g. 16000; got {rate!r}")
    tensor = torch.as_tensor(waveform, dtype=torch.float32)
    if orig_sample_rate != target_sample_rate:
        orig, target = _bounded_rate_ratio(int(orig_sample_rate), int(target_sample_rate))
        tensor = torchaudio.functional.resample(tensor, orig, target)
    return tensor.numpy()


def _sinc_kernel_size(orig: int, target: int) -> int:
    """Weights of torchaudio's resampling kernel for coprime rates (lowpass_filter_width 6, rolloff 0.99)."""
    width = math.ceil(6 * orig / (0.99 * min(orig, target)))
    return target * (orig + 2 * width)


def _bounded_rate_ratio(orig_sample_rate: int, target_sample_rate: int) -> tuple[int, int]:
    """`(orig, target)`: the rates reduced to coprime terms, or the nearest ratio whose kernel fits
    `MAX_RESAMPLING_KERNEL`."""
    ratio = Fraction(target_sample_rate, orig_sample_rate)
    approximation, max_denominator = ratio, ratio.denominator
    while _sinc_kernel_size(approximation.denominator, approximation.numerator) > MAX_RESAMPLING_KERNEL:
        max_denominator //= 2
        approximation = ratio.limit_denominator(max_denominator) if max_denominator else Fraction(0)
        if approximation == 0:
            raise ValueError(
                f"cannot resample from {orig_sample_rate} Hz to {target_sample_rate} Hz: the ratio is too extreme "
                "for audio; check the sample rate"
            )
    return approximation.denominator, approximation.numerator
