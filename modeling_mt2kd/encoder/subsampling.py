"""Convolutional front end: 80-bin fbank at 100 Hz → `encoder_dim[0]` channels at 50 Hz."""

from __future__ import annotations

import torch
from torch import nn

from ..initialization import with_initial_scale
from ..lengths import subsampled_lengths
from ..masks import lengths_to_mask
from .activation_constraints import Balancer, ScaleGradient, Whiten
from .activations import SwooshL, SwooshR
from .bias_norm import BiasNorm
from .dropout import shared_dropout
from .schedules import Schedule, schedule


class ConvNeXt(nn.Module):
    """Depthwise 7×7 conv → pointwise expand (×3) → SwooshL → pointwise project, with a residual.

    Input and output (batch, channels, frames, freqs). Frames past each utterance's end are zeroed
    before the depthwise convolution, so padding never reaches valid frames.
    """

    def __init__(self, channels: int, hidden_ratio: int = 3, kernel_size: int = 7):
        super().__init__()
        self.depthwise_conv = nn.Conv2d(
            channels, channels, kernel_size=kernel_size, padding=kernel_size // 2, groups=channels
        )
        self.pointwise_conv1 = nn.Conv2d(channels, channels * hidden_ratio, kernel_size=1)
        self.activation = SwooshL()
        self.pointwise_conv2 = with_initial_scale(nn.Conv2d(channels * hidden_ratio, channels, kernel_size=1), 0.01)
        self.layerdrop_rate: Schedule = schedule((0.0, 0.2), (20000.0, 0.015))
        self.hidden_balancer = Balancer(channel_dim=1, min_positive=0.3, max_positive=1.0, min_abs=0.75, max_abs=5.0)
        self.out_balancer = Balancer(channel_dim=1, min_positive=0.4, max_positive=0.6, min_abs=1.0, max_abs=6.0)
        self.out_whiten = Whiten(num_groups=1, whitening_limit=5.0, prob=(0.025, 0.25), grad_scale=0.01)

    def forward(
        self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None, batch_count: float | None = None
    ) -> torch.Tensor:
        """frame_mask (batch, frames) True on valid frames; None = no padding."""
        residual = hidden_states
        if frame_mask is not None:
            hidden_states = hidden_states * frame_mask[:, None, :, None].to(hidden_states.dtype)
        hidden_states = self.depthwise_conv(hidden_states)
        hidden_states = self.hidden_balancer(self.pointwise_conv1(hidden_states), batch_count)
        hidden_states = self.pointwise_conv2(self.activation(hidden_states))
        layerdrop_rate = self.layerdrop_rate(batch_count, self.training)
        if self.training and layerdrop_rate > 0.0:
            keep = torch.rand(hidden_states.shape[0], 1, 1, 1, device=hidden_states.device) > layerdrop_rate
            hidden_states = hidden_states * keep.to(hidden_states.dtype)
        hidden_states = self.out_balancer(residual + hidden_states, batch_count)
        # Whitening acts over channels, so it sees them last.
        return self.out_whiten(hidden_states.transpose(1, 3), batch_count).transpose(1, 3)


class Conv2dSubsampling(nn.Module):
    """Three Conv2d (+SwooshR), a ConvNeXt block, Linear and BiasNorm.

    (batch, frames, num_mel_bins) at 100 Hz → (batch, (frames - 7) // 2, out_channels) at 50 Hz.
    """

    def __init__(self, num_mel_bins: int, out_channels: int, layer_channels: tuple[int, int, int]):
        super().__init__()
        if num_mel_bins < 7:
            raise ValueError(f"Conv2dSubsampling needs at least 7 mel bins, got {num_mel_bins}")
        channels1, channels2, channels3 = layer_channels
        self.conv1 = nn.Conv2d(1, channels1, kernel_size=3, padding=(0, 1))
        self.conv2 = nn.Conv2d(channels1, channels2, kernel_size=3, stride=2)
        self.conv3 = nn.Conv2d(channels2, channels3, kernel_size=3, stride=(1, 2))
        self.activation = SwooshR()
        self.convnext = ConvNeXt(channels3)
        out_width = ((num_mel_bins - 1) // 2 - 1) // 2
        self.out_proj = nn.Linear(out_width * channels3, out_channels)
        self.out_norm = BiasNorm(out_channels)
        self.balancers = nn.ModuleList(Balancer(channel_dim=1, max_abs=limit) for limit in (1.0, 4.0, 4.0))
        self.out_whiten = Whiten(
            num_groups=1, whitening_limit=schedule((0.0, 4.0), (20000.0, 8.0), default=4.0), prob=(0.025, 0.25),
            grad_scale=0.02,
        )
        self.dropout_rate: Schedule = schedule((0.0, 0.3), (20000.0, 0.1))

    def forward(
        self, input_features: torch.Tensor, input_lengths: torch.Tensor | None, batch_count: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """input_lengths (batch,) valid fbank frames, None = no padding (nothing is masked).
        Returns (hidden_states (batch, frames', out_channels), lengths (batch,))."""
        hidden_states = input_features.unsqueeze(1)  # (batch, 1, frames, freqs)
        for index, conv in enumerate((self.conv1, self.conv2, self.conv3)):
            hidden_states = conv(hidden_states)
            if index == 0 and self.training:
                hidden_states = ScaleGradient.apply(hidden_states, 0.2)
            hidden_states = self.activation(self.balancers[index](hidden_states, batch_count))
        if input_lengths is None:
            lengths = torch.full((hidden_states.shape[0],), hidden_states.shape[2], device=hidden_states.device)
            frame_mask = None
        else:
            lengths = subsampled_lengths(input_lengths)
            frame_mask = lengths_to_mask(lengths, hidden_states.shape[2])
        hidden_states = self.convnext(hidden_states, frame_mask, batch_count)
        batch_size, channels, frames, freqs = hidden_states.shape
        # An explicit copy, then a view: reshape's own choice (view when frames == 1, else copy) is
        # a special case a captured graph would guard on.
        hidden_states = hidden_states.transpose(1, 2).clone(memory_format=torch.contiguous_format)
        hidden_states = hidden_states.view(batch_size, frames, channels * freqs)
        hidden_states = self.out_norm(self.out_whiten(self.out_proj(hidden_states), batch_count))
        hidden_states = shared_dropout(
            hidden_states, self.dropout_rate(batch_count, self.training), shared_dim=1, training=self.training
        )
        return hidden_states, lengths
