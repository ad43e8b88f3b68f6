"""Zipformer convolution module: sigmoid-gated depthwise convolution over time."""

import torch
from torch import nn

from ..initialization import with_initial_scale
from .activations import swoosh_r


class ConvolutionModule(nn.Module):
    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"cnn_module_kernel must be odd, got {kernel_size}")
        self.in_proj = nn.Linear(channels, 2 * channels)
        self.depthwise_conv = nn.Conv1d(
            channels, channels, kernel_size=kernel_size, padding=kernel_size // 2, groups=channels
        )
        self.out_proj = with_initial_scale(nn.Linear(channels, channels), 0.05)

    def forward(self, hidden_states: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        """(batch, frames, channels) → same shape; padded frames are zeroed before the convolution."""
        values, gate = self.in_proj(hidden_states).chunk(2, dim=-1)
        values = values * torch.sigmoid(gate)
        if key_padding_mask is not None:
            values = values.masked_fill(key_padding_mask.unsqueeze(-1), 0.0)
        values = self.depthwise_conv(values.transpose(1, 2)).transpose(1, 2)
        return self.out_proj(swoosh_r(values))
