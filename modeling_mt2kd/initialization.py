"""Initial parameter scales of the authors' recipe (icefall's ScaledLinear/ScaledConv)."""

from torch import nn


def with_initial_scale(layer: nn.Module, scale: float) -> nn.Module:
    """Mark a Linear/Conv layer to start `scale` times smaller than PyTorch's default init
    (its bias then starts in ±0.1·scale). Applied by `MT2KDPreTrainedModel._init_weights`."""
    layer.initial_scale = scale
    return layer
