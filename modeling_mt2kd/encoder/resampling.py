"""Frame-rate changes between Zipformer stacks."""

import torch
from torch import nn

from ..graph_capture import is_capturing_graph
from ..lengths import downsampled_lengths
from ..masks import lengths_to_mask


class SimpleDownsample(nn.Module):
    """Weighted sum of each group of `factor` consecutive frames (weights = softmax of a learnt bias).

    Each utterance is padded past its own end by repeating its last valid frame, so the result on
    valid frames is the same whether it runs alone or in a padded batch. The groups are a reshape of
    the padded frames (a copy and a `where` against the last valid frame; no index tensors).
    """

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(factor))

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(batch, frames, channels) with valid `lengths` (batch,) (None: no padding) →
        (batch, ceil(frames / factor), channels)."""
        batch_size, num_frames, channels = hidden_states.shape
        out_frames = downsampled_lengths(num_frames, self.factor)
        if lengths is None:
            last = hidden_states[:, num_frames - 1 :]
        else:
            last_valid = (lengths - 1).clamp(min=0).view(batch_size, 1, 1).expand(batch_size, 1, channels)
            last = hidden_states.gather(1, last_valid)  # (batch, 1, channels)
            valid = lengths_to_mask(lengths, num_frames).unsqueeze(-1)
            hidden_states = torch.where(valid, hidden_states, last)
        # `factor` copies of the last frame, then the first out_frames · factor frames (a view): a tail of
        # exactly the missing length could be empty, a case a compiled graph would guard on.
        padded = torch.cat([hidden_states, last.expand(batch_size, self.factor, channels)], dim=1)
        grouped = padded[:, : out_frames * self.factor].reshape(batch_size, out_frames, self.factor, channels)
        weights = self.bias.softmax(dim=0).to(hidden_states.dtype)
        return (grouped * weights[:, None]).sum(dim=2)


def upsample(hidden_states: torch.Tensor, factor: int, num_frames: int) -> torch.Tensor:
    """Repeat each frame `factor` times and cut to `num_frames`: (batch, T, C) → (batch, num_frames, C)."""
    batch_size, frames, channels = hidden_states.shape
    repeated = hidden_states.unsqueeze(2).expand(batch_size, frames, factor, channels)
    if not is_capturing_graph():
        # One copy, then a cut view of it (a fresh tensor that callers may overwrite; reshape alone
        # would return an overlapping view for a single frame).
        return repeated.contiguous().view(batch_size, frames * factor, channels)[:, :num_frames]
    upsampled = repeated.reshape(batch_size, frames * factor, channels)[:, :num_frames]
    # A fresh contiguous tensor: whether the cut view is contiguous depends on num_frames % factor,
    # which a compiled graph would otherwise guard on (one recompilation per remainder).
    return upsampled.clone(memory_format=torch.contiguous_format)


def padding_mask(lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(batch, num_frames), True on padded frames (the convention of attention key masks)."""
    return ~lengths_to_mask(lengths, num_frames)
