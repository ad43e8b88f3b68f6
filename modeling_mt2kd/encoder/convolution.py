"""Zipformer convolution module: sigmoid-gated depthwise convolution over time."""

import torch
from torch import nn

from ..initialization import with_initial_scale
from .activation_constraints import Balancer, Whiten, whitening_schedule
from .activations import swoosh_r
from .causal_convolution import ChunkCausalDepthwiseConv1d, depthwise_conv_over_time
from .schedules import schedule


class ConvolutionModule(nn.Module):
    def __init__(self, channels: int, kernel_size: int, causal: bool = False):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"cnn_module_kernel must be odd, got {kernel_size}")
        self.causal = causal
        self.in_proj = nn.Linear(channels, 2 * channels)
        if causal:
            self.depthwise_conv = ChunkCausalDepthwiseConv1d(channels, kernel_size)
        else:
            self.depthwise_conv = nn.Conv1d(
                channels, channels, kernel_size=kernel_size, padding=kernel_size // 2, groups=channels
            )
        self.out_proj = with_initial_scale(nn.Linear(channels, channels), 0.05)
        self.gate_balancer = Balancer(
            channel_dim=-1, min_positive=schedule((0.0, 0.05), (8000.0, 0.025)), max_positive=1.0, min_abs=1.5,
            max_abs=schedule((0.0, 5.0), (8000.0, 10.0), default=1.0),
        )
        self.conv_balancer = Balancer(
            channel_dim=1, min_positive=schedule((0.0, 0.1), (8000.0, 0.05)), max_positive=1.0,
            min_abs=schedule((0.0, 0.2), (20000.0, 0.5)), max_abs=10.0,
        )
        self.whiten = Whiten(1, whitening_schedule(7.5), prob=(0.025, 0.25), grad_scale=0.01)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        batch_count: float | None = None,
        chunk_size: int = -1,
    ) -> torch.Tensor:
        """(batch, frames, channels) → same shape; padded frames are zeroed before the convolution.
        A causal module convolves chunk-causally with chunks of `chunk_size` frames (-1: one chunk)."""
        values, gate = self.in_proj(hidden_states).chunk(2, dim=-1)
        values = values * torch.sigmoid(self.gate_balancer(gate, batch_count))
        if key_padding_mask is not None:
            values = values.masked_fill(key_padding_mask.unsqueeze(-1), 0.0)
        if self.causal:
            convolved = self.depthwise_conv(values, chunk_size)
        else:
            convolved = depthwise_conv_over_time(self.depthwise_conv, values, self.depthwise_conv.padding[0])
        # The balancer acts on channel dim 1, so it sees (batch, channels, frames) (a view).
        values = self.conv_balancer(convolved.transpose(1, 2), batch_count).transpose(1, 2)
        return self.out_proj(swoosh_r(self.whiten(values, batch_count)))
