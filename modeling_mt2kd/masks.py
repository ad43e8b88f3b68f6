"""The one place where lengths become masks (and back)."""

import torch


def lengths_to_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean validity mask (batch, max_length): True on the first `lengths[b]` frames."""
    if max_length is None:
        max_length = int(lengths.max()) if lengths.numel() else 0
    positions = torch.arange(max_length, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def mask_to_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """Number of valid frames per row of a (batch, frames) 0/1 mask (valid frames come first)."""
    return attention_mask.to(torch.long).sum(dim=-1)
