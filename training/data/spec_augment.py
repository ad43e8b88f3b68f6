"""SpecAugment on fbank features for the student (teachers see clean input)."""

from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """Time and frequency masking of `(batch, frames, bins)` features; identity in eval or when disabled.

    Per utterance with L valid frames: `num_time_masks` time masks, each at most
    `min(max_time_mask_frames, max_time_masked_fraction * L / num_time_masks)` frames wide, so a
    short utterance loses the same share of its frames as a long one (at most
    `max_time_masked_fraction` in total); and `num_freq_masks` frequency masks of at most
    `max_freq_mask_bins` bins. Masked values become the utterance's mean over its valid frames
    (`fill="mean"`) or 0 (`fill="zero"`). Padded frames are never touched. Random draws come from
    the given `torch.Generator` (CPU), so a seeded generator reproduces the masks exactly.
    """

    def __init__(
        self,
        num_time_masks: int = 10,
        max_time_mask_frames: int = 100,
        max_time_masked_fraction: float = 0.15,
        num_freq_masks: int = 2,
        max_freq_mask_bins: int = 27,
        fill: str = "mean",
        enabled: bool = True,
    ) -> None:
        super().__init__()
        if fill not in ("mean", "zero"):
            raise ValueError(f"fill must be 'mean' or 'zero'; got {fill!r}")
        if not 0.0 <= max_time_masked_fraction <= 1.0:
            raise ValueError(f"max_time_masked_fraction must be in [0, 1]; got {max_time_masked_fraction}")
        if min(num_time_masks, max_time_mask_frames, num_freq_masks, max_freq_mask_bins) < 0:
            raise ValueError("mask counts and widths must be >= 0")
        self.num_time_masks = num_time_masks
        self.max_time_mask_frames = max_time_mask_frames
        self.max_time_masked_fraction = max_time_masked_fraction
        self.num_freq_masks = num_freq_masks
        self.max_freq_mask_bins = max_freq_mask_bins
        self.fill = fill
        self.enabled = enabled

    def forward(
        self, features: torch.Tensor, attention_mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Masked copy of `features` (batch, frames, bins); `attention_mask` (batch, frames), 1 = valid."""
        if not (self.enabled and self.training):
            return features
        if features.dim() != 3 or attention_mask.shape != features.shape[:2]:
            raise ValueError(
                f"expected features (batch, frames, bins) and attention_mask (batch, frames); got "
                f"{tuple(features.shape)} and {tuple(attention_mask.shape)}"
            )
        batch_size, num_frames, num_bins = features.shape
        valid = attention_mask.bool()
        lengths = valid.sum(dim=1).cpu()

        time_widths_max = torch.minimum(
            torch.full_like(lengths, self.max_time_mask_frames),
            (lengths * self.max_time_masked_fraction / max(self.num_time_masks, 1)).long(),
        )
        time_masked = self._spans(lengths, time_widths_max, self.num_time_masks, num_frames, generator)
        bins = torch.full_like(lengths, num_bins)
        freq_masked = self._spans(
            bins,
            torch.full_like(lengths, min(self.max_freq_mask_bins, num_bins)),
            self.num_freq_masks,
            num_bins,
            generator,
        )
        masked = time_masked.to(features.device)[:, :, None] | freq_masked.to(features.device)[:, None, :]
        masked &= valid[:, :, None]

        if self.fill == "zero":
            fill = torch.zeros(batch_size, 1, 1, dtype=features.dtype, device=features.device)
        else:
            weights = valid[:, :, None].to(features.dtype)
            fill = (features * weights).sum(dim=(1, 2), keepdim=True) / (
                weights.sum(dim=1, keepdim=True) * num_bins
            ).clamp(min=1)
        return torch.where(masked, fill, features)

    @staticmethod
    def _spans(
        extents: torch.Tensor, max_widths: torch.Tensor, count: int, size: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """(batch, size) bool: `count` random spans per row, each of width in [0, max_widths[row]],
        lying inside [0, extents[row])."""
        batch_size = extents.shape[0]
        positions = torch.arange(size)
        if count == 0:
            return torch.zeros(batch_size, size, dtype=torch.bool)
        uniform = torch.rand(batch_size, count, 2, generator=generator)
        widths = (uniform[..., 0] * (max_widths[:, None] + 1).float()).long().clamp(max=max_widths[:, None])
        starts = (uniform[..., 1] * (extents[:, None] - widths + 1).clamp(min=1).float()).long()
        inside = (positions[None, None, :] >= starts[..., None]) & (
            positions[None, None, :] < (starts + widths)[..., None]
        )
        return inside.any(dim=1)
