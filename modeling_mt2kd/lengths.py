"""How many frames each stage of the model gives: the one owner of the input → output length arithmetic.

For N samples at 16 kHz:
    fbank (100 Hz, Kaldi snip_edges=False)    F   = (N + 80) // 160
    Conv2dSubsampling (50 Hz)                 T50 = (F - 7) // 2                      `subsampled_lengths`
    output downsampling by d (25 Hz for d=2)  T25 = ceil(T50 / d)                     `downsampled_lengths`
so one output frame covers `config.inputs_to_logits_ratio` = 160 · 2 · d = 640 samples.
"""

from __future__ import annotations

import torch

from configuration_mt2kd.configuration_mt2kd import FBANK_HOP_SAMPLES

__all__ = ["downsampled_lengths", "encoder_output_lengths", "fbank_num_frames", "samples_to_output_frames", "subsampled_lengths"]


def subsampled_lengths(input_lengths: torch.Tensor) -> torch.Tensor:
    """Frames after `Conv2dSubsampling` (50 Hz) of `input_lengths` fbank frames: (T - 7) // 2."""
    return (input_lengths - 7) // 2


def downsampled_lengths(lengths: torch.Tensor, factor: int) -> torch.Tensor:
    """Frames after downsampling `lengths` (a tensor or an int) by `factor`: ceil(lengths / factor)."""
    return (lengths + factor - 1) // factor


def fbank_num_frames(num_samples: torch.Tensor) -> torch.Tensor:
    """Fbank frames (100 Hz) of `num_samples` at 16 kHz: frame t is centred on sample t · 160 + 80."""
    return (num_samples + FBANK_HOP_SAMPLES // 2) // FBANK_HOP_SAMPLES


def encoder_output_lengths(input_lengths: torch.Tensor, output_downsampling_factor: int = 2) -> torch.Tensor:
    """Encoder output frames (25 Hz for the default factor) of `input_lengths` (batch,) fbank frames."""
    return downsampled_lengths(subsampled_lengths(input_lengths), output_downsampling_factor)


def samples_to_output_frames(num_samples: torch.Tensor, output_downsampling_factor: int = 2) -> torch.Tensor:
    """Encoder output frames of `num_samples` (batch,) samples at 16 kHz; 0 where too short for one."""
    return encoder_output_lengths(fbank_num_frames(num_samples), output_downsampling_factor).clamp(min=0)
