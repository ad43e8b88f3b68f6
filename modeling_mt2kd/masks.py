"""The one place where lengths become masks (and back)."""

import torch


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean validity mask (batch, max_length): True on the first `lengths[b]` frames.

    `max_length` is the padded size (e.g. `tensor.shape[1]`), never `lengths.max()`: reading a value
    would be a host sync and a data-dependent shape in a captured graph."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def mask_to_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """Number of valid frames per row of a (batch, frames) 0/1 mask (valid frames come first)."""
    return attention_mask.to(torch.long).sum(dim=-1)
