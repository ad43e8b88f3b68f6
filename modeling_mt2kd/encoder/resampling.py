"""Frame-rate changes between Zipformer stacks."""

import torch
from torch import nn

from ..lengths import downsampled_lengths
from ..masks import lengths_to_mask


class SimpleDownsample(nn.Module):
    """Weighted sum of each group of `factor` consecutive frames (weights = softmax of a learnt bias).

    Each utterance is padded past its own end by repeating its last valid frame, so the result on
    valid frames is the same whether it runs alone or in a padded batch.
    """

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(factor))

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, frames, channels) → (batch, ceil(frames / factor), channels)."""
        batch_size, num_frames, channels = hidden_states.shape
        out_frames = downsampled_lengths(num_frames, self.factor)
        positions = torch.arange(out_frames * self.factor, device=hidden_states.device)
        last_valid = (lengths - 1).clamp(min=0).unsqueeze(1)
        source_index = torch.minimum(positions.unsqueeze(0), last_valid)  # (batch, out_frames * factor)
        padded = hidden_states.gather(1, source_index.unsqueeze(-1).expand(-1, -1, channels))
        grouped = padded.reshape(batch_size, out_frames, self.factor, channels)
        weights = self.bias.softmax(dim=0).to(hidden_states.dtype)
        return (grouped * weights[:, None]).sum(dim=2)


def upsample(hidden_states: torch.Tensor, factor: int, num_frames: int) -> torch.Tensor:
    """Repeat each frame `factor` times and cut to `num_frames`: (batch, T, C) → (batch, num_frames, C)."""
    batch_size, frames, channels = hidden_states.shape
    repeated = hidden_states.unsqueeze(2).expand(batch_size, frames, factor, channels)
    # A fresh contiguous tensor: whether the cut view is contiguous depends on num_frames % factor,
    # which a compiled graph would otherwise guard on (one recompilation per remainder).
    return repeated.reshape(batch_size, frames * factor, channels)[:, :num_frames].clone(
        memory_format=torch.contiguous_format
    )


def padding_mask(lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(batch, num_frames), True on padded frames (the convention of attention key masks)."""
    return ~lengths_to_mask(lengths, num_frames)
