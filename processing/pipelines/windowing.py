"""Clip-level results (tags, speaker embedding) of long recordings in bounded memory: overlapping windows, pooled.

The encoder attends over the whole of its input, so its memory grows with the square of the duration (5 min of
audio: 7.8 GB for the 66M model). The tagging, speaker and multi-task pipelines therefore cut a recording into
windows of `window_length_s` seconds that overlap by `window_overlap_s` seconds, run the model on each window
(several windows per call with `batch_size`), and pool the windows' outputs. Memory is bounded by one batch of
windows whatever the duration; the waveform itself (64 KB per second at 16 kHz) is the only part that grows.

Windows are [`ChunkLayout`] chunks: half the overlap is context on either side, and the kept spans (window minus
its context) tile the recording exactly, every encoder frame in exactly one of them. Pooling weighs each window by
its kept span in samples, so every part of the recording counts once:

- tags: the weighted mean of the windows' clip logits (`window_pooling="mean"`, the default; the tagging head
  itself averages frame logits, so this is the head's own mean over the whole recording up to the context
  frames), or the highest score any window gives each label (`"max"`, for short events in a long recording);
- speaker embedding: the weighted mean of the windows' embeddings;
- transcript (multi-task pipeline): tokens from the frames of each window's kept span, in order.

A recording no longer than one window is one window: its results are exactly those of a whole-recording pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..feature_extraction_mt2kd import MT2KDFeatureExtractor
from .audio_input import audio_to_features
from .chunking import AudioChunk, ChunkLayout

__all__ = [
    "DEFAULT_WINDOW_LENGTH_S",
    "DEFAULT_WINDOW_OVERLAP_S",
    "WINDOW_POOLINGS",
    "WindowSettings",
    "kept_samples",
    "pool_windows",
    "window_call_parameters",
    "window_model_inputs",
    "window_timestamp",
]

# 30 s windows: long enough for the clip-level heads (trained on 10 s AudioSet clips and 3-8 s VoxCeleb
# utterances) and for ASR context, small enough that one window costs tens of MB on the 66M model.
DEFAULT_WINDOW_LENGTH_S = 30.0
# 2.5 s of context on each side of a window's kept span.
DEFAULT_WINDOW_OVERLAP_S = 5.0
WINDOW_POOLINGS = ("mean", "max")


@dataclass(frozen=True)
class WindowSettings:
    """How a pipeline cuts a recording into windows; the one owner of the window sizes and their checks.

    Args:
        window_length_s: window duration in seconds, context included (default `DEFAULT_WINDOW_LENGTH_S` = 30).
        window_overlap_s: seconds shared by consecutive windows, half on each side of a kept span (default
            `DEFAULT_WINDOW_OVERLAP_S` = 5); shorter than `window_length_s`.
    """

    window_length_s: float = DEFAULT_WINDOW_LENGTH_S
    window_overlap_s: float = DEFAULT_WINDOW_OVERLAP_S

    def __post_init__(self):
        for name in ("window_length_s", "window_overlap_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number of seconds (e.g. {getattr(WindowSettings, name)}); "
                                 f"got {value!r}")
        if self.window_length_s <= 0:
            raise ValueError(
                f"window_length_s must be > 0 seconds; got {self.window_length_s} (default {DEFAULT_WINDOW_LENGTH_S})"
            )
        if not 0 <= self.window_overlap_s < self.window_length_s:
            raise ValueError(
                f"window_overlap_s must be >= 0 and shorter than window_length_s={self.window_length_s}; got "
                f"{self.window_overlap_s} (default {DEFAULT_WINDOW_OVERLAP_S})"
            )

    @classmethod
    def from_arguments(
        cls, window_length_s: float | None = None, window_overlap_s: float | None = None
    ) -> WindowSettings:
        """Settings from pipeline call parameters; `None` = the default. Without an overlap, a window shorter than
        the default overlaps by a sixth of its length (as the ASR pipelines' default stride)."""
        length = DEFAULT_WINDOW_LENGTH_S if window_length_s is None else window_length_s
        if window_overlap_s is None and isinstance(length, (int, float)) and not isinstance(length, bool):
            window_overlap_s = min(DEFAULT_WINDOW_OVERLAP_S, length / 6)
        return cls(length, DEFAULT_WINDOW_OVERLAP_S if window_overlap_s is None else window_overlap_s)

    def layout(self, sampling_rate: int, samples_per_frame: int) -> ChunkLayout:
        """The windows as a [`ChunkLayout`]: sizes rounded to whole encoder frames of `samples_per_frame` samples."""
        half_overlap = self.window_overlap_s / 2
        return ChunkLayout.from_seconds(self.window_length_s, (half_overlap, half_overlap), sampling_rate,
                                        samples_per_frame)

    def windows(self, num_samples: int, sampling_rate: int, samples_per_frame: int) -> Iterator[AudioChunk]:
        """The windows of a recording of `num_samples` samples, first to last (lazily).

        A last window shorter than half a window (a short tail, with little or no overlap) starts earlier, by whole
        frames, so that the model sees at least half a window of audio; the extra samples are context, its kept
        span is unchanged.
        """
        layout = self.layout(sampling_rate, samples_per_frame)
        min_samples = layout.chunk_samples // 2
        for window in layout.chunks(num_samples):
            missing = min_samples - (window.end - window.start)
            if missing > 0 and window.start > 0:
                shift = min(window.start, math.ceil(missing / samples_per_frame) * samples_per_frame)
                window = AudioChunk(window.start - shift, window.end, window.stride_left + shift, window.stride_right)
            yield window


def window_call_parameters(
    window_length_s: float | None = None,
    window_overlap_s: float | None = None,
    window_pooling: str | None = None,
    return_windows: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The window parameters of a windowed pipeline's call, checked; the one `_sanitize_parameters` of them.

    Args:
        window_length_s, window_overlap_s: window size and overlap in seconds ([`WindowSettings.from_arguments`]).
        window_pooling: `"mean"` or `"max"` (`WINDOW_POOLINGS`), for pipelines that pool scores.
        return_windows: also return the per-window results.

    Returns:
        `(preprocess_params, postprocess_params)`: `{"window_settings": WindowSettings}` when a size was given, and
        `window_pooling` / `return_windows` when given. Parameters left at `None` are left out (the values set when
        the pipeline was built, else the defaults, stay).

    Raises:
        ValueError: a window size that is not a positive number of seconds, an overlap not shorter than the window,
            an unknown pooling.
    """
    preprocess_params, postprocess_params = {}, {}
    if window_length_s is not None or window_overlap_s is not None:
        preprocess_params["window_settings"] = WindowSettings.from_arguments(window_length_s, window_overlap_s)
    if window_pooling is not None:
        if window_pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window_pooling must be one of {WINDOW_POOLINGS}; got {window_pooling!r}")
        postprocess_params["window_pooling"] = window_pooling
    if return_windows is not None:
        postprocess_params["return_windows"] = bool(return_windows)
    return preprocess_params, postprocess_params


def window_model_inputs(
    waveform: np.ndarray, feature_extractor: MT2KDFeatureExtractor, settings: WindowSettings, samples_per_frame: int
) -> Iterator[dict[str, Any]]:
    """Model inputs of each window of a checked 16 kHz waveform, for a `ChunkPipeline.preprocess`.

    Yields `input_features` `(1, frames, 80)`, `attention_mask` `(1, frames)`, the window's position as `(1,)`
    tensors ([`AudioChunk.as_tensors`]) and `is_last`. Features are computed one window at a time.
    """
    for window in settings.windows(len(waveform), feature_extractor.sampling_rate, samples_per_frame):
        yield {
            **audio_to_features(waveform[window.start : window.end], feature_extractor),
            **window.as_tensors(),
            "is_last": window.end >= len(waveform),
        }


def kept_samples(window: AudioChunk) -> int:
    """Samples of the recording that `window` stands for: its length minus its context."""
    return window.end - window.start - window.stride_left - window.stride_right


def pool_windows(values: Sequence[torch.Tensor], windows: Sequence[AudioChunk], pooling: str = "mean") -> torch.Tensor:
    """Pool one `(dim,)` float value per window into one `(dim,)` float32 value.

    Args:
        values: per-window outputs (logits, scores or embeddings), each `(dim,)` or `(1, dim)`.
        windows: the windows they came from, for the weights.
        pooling: `"mean"` (weighted by [`kept_samples`]) or `"max"` (element-wise maximum).
    """
    if pooling not in WINDOW_POOLINGS:
        raise ValueError(f"window_pooling must be one of {WINDOW_POOLINGS}; got {pooling!r}")
    stacked = torch.stack([value.reshape(-1).float() for value in values])
    if len(values) == 1:  # one window: its own value, bit for bit (a recording up to one window long)
        return stacked[0]
    if pooling == "max":
        return stacked.max(dim=0).values
    weights = torch.tensor([max(kept_samples(window), 1) for window in windows], dtype=torch.float32)
    return (weights.unsqueeze(1) * stacked).sum(dim=0) / weights.sum()


def window_timestamp(window: AudioChunk, sampling_rate: int) -> tuple[float, float]:
    """`(start_s, end_s)` of the audio a window saw, context included."""
    return window.start / sampling_rate, window.end / sampling_rate
