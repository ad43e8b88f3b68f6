"""Learnt per-channel interpolation between a module's input and output."""

import torch
from torch import nn

from .gradient_limits import limit_param_value
from .inference import eager_inference
from .schedules import Schedule, schedule


class BypassModule(nn.Module):
    """out = input + (output - input) · bypass_scale.

    In training the scale's gradient keeps it within [scale_min(batch), 1] and, per utterance, the
    scale is set to 0 (the module is skipped) with probability `skip_rate(batch)`.
    """

    def __init__(self, embed_dim: int, skip_rate: Schedule | None = None):
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((embed_dim,), 0.5))
        self.skip_rate = skip_rate or schedule((0.0, 0.0))
        self.scale_min: Schedule = schedule((0.0, 0.9), (20000.0, 0.2), default=0.0)

    def forward(
        self,
        module_input: torch.Tensor,
        module_output: torch.Tensor,
        batch_count: float | None = None,
        output_is_scratch: bool = False,
    ) -> torch.Tensor:
        """Both (batch, frames, embed_dim). output_is_scratch: the caller will not read `module_output`
        again, so in eager inference (see `eager_inference`) the result is computed in its memory
        (same operations, same order: bit-identical, no new tensors)."""
        if output_is_scratch and not self.training and eager_inference():
            return module_output.sub_(module_input).mul_(self.bypass_scale).add_(module_input)
        scale = self.bypass_scale
        if self.training:
            scale = limit_param_value(scale, self.scale_min(batch_count, True), 1.0, training=True)
            skip_rate = self.skip_rate(batch_count, True)
            if skip_rate > 0.0:
                keep = torch.rand(module_output.shape[0], 1, 1, device=scale.device) > skip_rate
                scale = scale * keep.to(scale.dtype)
        return module_input + (module_output - module_input) * scale
