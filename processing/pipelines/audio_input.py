"""What the MT2KD pipelines accept as one recording, read into a checked 16 kHz mono waveform."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature

from configuration_mt2kd import MIN_INPUT_FRAMES

from ..audio_io import load_audio
from ..feature_extraction_mt2kd import MT2KDFeatureExtractor

__all__ = ["AudioInput", "audio_to_features", "read_audio_input", "read_stock_pipeline_input"]

# One recording: a path, the encoded bytes of a file, `{"raw" | "array": samples, "sampling_rate": Hz}` (the
# `datasets` layout), or samples (numpy / torch) already at the feature extractor's rate.
AudioInput = str | os.PathLike | bytes | Mapping[str, Any] | np.ndarray | torch.Tensor


def read_audio_input(inputs: AudioInput, feature_extractor: MT2KDFeatureExtractor) -> np.ndarray:
    """Decode, check, down-mix and resample one pipeline input.

    Args:
        inputs: a path (any format soundfile reads: WAV, FLAC, Ogg, MP3), the bytes of such a file,
            `{"raw": samples, "sampling_rate": Hz}` (or `"array"` for `"raw"`, as `datasets` names it), or a numpy
            array / torch tensor taken to be at `feature_extractor.sampling_rate` (as the transformers ASR pipeline
            does). Arrays may be `(samples,)`, `(channels, samples)` or `(samples, channels)`, float or integer PCM.
        feature_extractor: gives the target rate and the checks on the samples.

    Returns:
        `(samples,)` float32 at `feature_extractor.sampling_rate`.

    Raises:
        FileNotFoundError: a path that is not an existing file.
        ValueError: undecodable or empty files and bytes ([`AudioDecodeError`]), a dict without samples or rate, empty
            audio, NaN or infinite samples, audio too short for the encoder (`MIN_INPUT_FRAMES` fbank frames).
        TypeError: any other kind of input.
    """
    name = "the audio"
    if isinstance(inputs, (str, os.PathLike)):
        name = f"audio file {os.fspath(inputs)!r}"
        waveform, sampling_rate = load_audio(inputs, target_sample_rate=feature_extractor.sampling_rate)
    elif isinstance(inputs, (bytes, bytearray, memoryview)):
        waveform, sampling_rate = load_audio(inputs, target_sample_rate=feature_extractor.sampling_rate)
    elif isinstance(inputs, Mapping):
        waveform, sampling_rate = _samples_and_rate(inputs)
    elif isinstance(inputs, (np.ndarray, torch.Tensor)):
        waveform, sampling_rate = inputs, feature_extractor.sampling_rate
    else:
        raise TypeError(
            f"cannot read audio from a {type(inputs).__name__}; pass a path, the file's bytes, a numpy array at "
            f"{feature_extractor.sampling_rate} Hz or {{'raw': array, 'sampling_rate': rate}}"
        )
    # The feature extractor's own checks (dtype, layout, empty, NaN/inf, too short), down-mix and resampling.
    waveform = feature_extractor._prepare_waveform(_as_numpy(waveform), sampling_rate, name)
    check_encoder_input_length(waveform, feature_extractor, name)
    return waveform


def check_encoder_input_length(waveform: np.ndarray, feature_extractor: MT2KDFeatureExtractor, name: str) -> None:
    """The encoder's minimum length, checked on the audio: a compiled or exported model skips its own
    check (a host sync), so pipelines must refuse too-short audio before the forward pass."""
    frames = feature_extractor.num_frames(len(waveform))
    if frames < MIN_INPUT_FRAMES:
        min_samples = feature_extractor.min_model_input_samples
        raise ValueError(
            f"{name} is too short: {len(waveform)} samples give {frames} fbank frames and the encoder needs at least "
            f"{MIN_INPUT_FRAMES} fbank frames; pass at least {min_samples} samples "
            f"({1000 * min_samples / feature_extractor.sampling_rate:g} ms) at {feature_extractor.sampling_rate} Hz"
        )


def read_stock_pipeline_input(inputs: Any, feature_extractor: MT2KDFeatureExtractor) -> Any:
    """What the stock `automatic-speech-recognition` / `audio-classification` pipelines get for an MT2KD model.

    A path, file bytes, array or `{"raw" | "array", "sampling_rate", ...}` dict becomes a checked `(samples,)` float32
    waveform at `feature_extractor.sampling_rate` ([`read_audio_input`]: soundfile instead of an ffmpeg binary,
    channels down-mixed in either layout, integer PCM scaled, any rate resampled in bounded memory). A dict stays a
    dict with its other keys, its `"stride"` (in input samples) rescaled to the new rate. URLs and anything else
    are returned unchanged, for the stock pipeline's own handling.
    """
    if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
        return inputs
    if isinstance(inputs, Mapping):
        samples, sampling_rate = _samples_and_rate(inputs)
        waveform = read_audio_input({"raw": samples, "sampling_rate": sampling_rate}, feature_extractor)
        passed_on = {key: value for key, value in inputs.items() if key not in ("raw", "array", "path", "sampling_rate")}
        if passed_on.get("stride") is not None:
            ratio = feature_extractor.sampling_rate / sampling_rate
            passed_on["stride"] = tuple(int(round(samples_ * ratio)) for samples_ in passed_on["stride"])
        return {"raw": waveform, "sampling_rate": feature_extractor.sampling_rate, **passed_on}
    if isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, torch.Tensor)):
        return read_audio_input(inputs, feature_extractor)
    return inputs


def audio_to_features(waveform: np.ndarray, feature_extractor: MT2KDFeatureExtractor) -> BatchFeature:
    """`input_features` `(1, frames, 80)` at 100 Hz and `attention_mask` `(1, frames)` of a checked waveform."""
    return feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")


def _samples_and_rate(inputs: Mapping[str, Any]) -> tuple[Any, int]:
    samples = inputs.get("raw", inputs.get("array"))
    if samples is None or "sampling_rate" not in inputs:
        raise ValueError(
            f"an audio dict needs the samples under 'raw' (or 'array') and their rate under 'sampling_rate', e.g. "
            f"{{'raw': waveform, 'sampling_rate': 16000}}; got keys {sorted(inputs)}"
        )
    return samples, inputs["sampling_rate"]


def _as_numpy(samples: np.ndarray | torch.Tensor | Any) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu()
        # numpy has no bfloat16; integer PCM keeps its dtype so that it is scaled, not taken as float.
        return (samples.float() if samples.dtype in (torch.bfloat16, torch.float16) else samples).numpy()
    return np.asarray(samples)
