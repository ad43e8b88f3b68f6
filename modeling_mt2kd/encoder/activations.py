"""SwooshL and SwooshR, Zipformer's activations (computed in float32)."""

import torch
import torch.nn.functional as F
from torch import nn


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x - 4)) - 0.08 x - 0.035."""
    x32 = x.float()
    return (F.softplus(x32 - 4.0) - 0.08 * x32 - 0.035).to(x.dtype)


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x - 1)) - 0.08 x - 0.313261687 (zero at x = 0)."""
    x32 = x.float()
    return (F.softplus(x32 - 1.0) - 0.08 * x32 - 0.313261687).to(x.dtype)


class SwooshL(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_l(x)


class SwooshR(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_r(x)
