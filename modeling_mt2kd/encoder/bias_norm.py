"""BiasNorm: Zipformer's replacement for LayerNorm."""

import torch
from torch import nn

from .gradient_limits import limit_param_value


class BiasNorm(nn.Module):
    """x · exp(log_scale) / RMS(x - bias) over the channel (last) dimension.

    The learnt bias only enters the normaliser, so a channel cannot defeat the normalisation by
    holding a large constant value.
    """

    def __init__(self, num_channels: int, log_scale: float = 1.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(log_scale))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(..., channels) → same shape."""
        log_scale = limit_param_value(self.log_scale, -1.5, 1.5, training=self.training)
        mean_square = (hidden_states - self.bias).pow(2).mean(dim=-1, keepdim=True)
        return hidden_states * mean_square.rsqrt() * log_scale.exp()
