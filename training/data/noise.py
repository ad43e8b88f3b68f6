"""Additive noise at a random signal-to-noise ratio, for the student's input only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from training_mt2kd.data.decode import SkippedExample, decode_waveform
from training_mt2kd.data.health import DataHealth


class NoiseMixer:
    """Adds a random stretch of a random noise recording to each waveform at an SNR drawn from
    `snr_db_range` (uniform, dB), with probability `probability` per waveform.

    `noises` is any indexable collection whose items are `(samples,)` arrays/tensors at
    `sample_rate`, or corpus examples (`{"audio": ...}` from `load_corpus`) decoded on use; a noise
    that cannot be decoded is skipped for that waveform and recorded in `health`. Noise shorter
    than a waveform is repeated. Only the first `waveform_lengths[b]` samples of row b change, and
    silent waveforms or silent noise are left as they are. All draws come from `generator`.
    """

    def __init__(
        self,
        noises: Sequence[Any],
        snr_db_range: tuple[float, float] = (10.0, 20.0),
        probability: float = 1.0,
        sample_rate: int = 16000,
        health: DataHealth | None = None,
    ) -> None:
        if len(noises) == 0:
            raise ValueError("NoiseMixer needs at least one noise recording; got an empty collection")
        low, high = snr_db_range
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"snr_db_range must be (low, high) finite dB with low <= high; got {snr_db_range}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1]; got {probability}")
        self.noises = noises
        self.snr_db_range = (float(low), float(high))
        self.probability = probability
        self.sample_rate = sample_rate
        self.health = health

    def __call__(
        self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noisy copy of `waveforms` (batch, samples); `waveform_lengths` (batch,) in samples."""
        if waveforms.dim() != 2 or waveform_lengths.shape != waveforms.shape[:1]:
            raise ValueError(
                f"expected waveforms (batch, samples) and waveform_lengths (batch,); got {tuple(waveforms.shape)} "
                f"and {tuple(waveform_lengths.shape)}"
            )
        noisy = waveforms.clone()
        draws = torch.rand(waveforms.shape[0], 4, generator=generator, dtype=torch.float64)
        low, high = self.snr_db_range
        for row, (apply, pick, offset, snr) in enumerate(draws.tolist()):
            length = int(waveform_lengths[row])
            if apply >= self.probability or length == 0:
                continue
            noise = self._noise(min(int(pick * len(self.noises)), len(self.noises) - 1))
            if noise is None:
                continue
            segment = _segment(noise, length, offset).to(waveforms.device, waveforms.dtype)
            signal = waveforms[row, :length]
            signal_power = signal.double().pow(2).mean()
            noise_power = segment.double().pow(2).mean()
            if signal_power == 0 or noise_power == 0:
                continue
            snr_db = low + snr * (high - low)
            scale = torch.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
            noisy[row, :length] = signal + scale.to(waveforms.dtype) * segment
        return noisy

    def _noise(self, index: int) -> torch.Tensor | None:
        item = self.noises[index]
        if isinstance(item, dict):
            try:
                item = decode_waveform(item["audio"], self.sample_rate)
            except SkippedExample as skipped:
                if self.health is not None:
                    self.health.record(skipped.reason, str(item.get("id", index)))
                return None
        noise = torch.as_tensor(np.asarray(item) if not isinstance(item, torch.Tensor) else item, dtype=torch.float32)
        if noise.dim() != 1:
            raise ValueError(f"noise {index} must be (samples,); got shape {tuple(noise.shape)}")
        return noise if noise.numel() > 0 and bool(torch.isfinite(noise).all()) else None


def _segment(noise: torch.Tensor, length: int, offset_fraction: float) -> torch.Tensor:
    """`length` samples of `noise` from a random start, repeating the noise when it is too short."""
    if noise.numel() >= length:
        start = min(int(offset_fraction * (noise.numel() - length + 1)), noise.numel() - length)
        return noise[start : start + length]
    start = min(int(offset_fraction * noise.numel()), noise.numel() - 1)
    repeats = math.ceil((length + start) / noise.numel())
    return noise.repeat(repeats)[start : start + length]
