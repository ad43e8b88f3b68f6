"""SwooshL and SwooshR, Zipformer's activations (computed in float32)."""

import torch
import torch.nn.functional as F
from torch import nn

from .inference import eager_inference


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x - 4)) - 0.08 x - 0.035."""
    return _swoosh(x, 4.0, 0.035)


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x - 1)) - 0.08 x - 0.313261687 (zero at x = 0)."""
    return _swoosh(x, 1.0, 0.313261687)


def _swoosh(x: torch.Tensor, shift: float, offset: float) -> torch.Tensor:
    """softplus(x - shift) - 0.08 x - offset, in float32, returned in x's dtype.

    With autograd or in a captured graph: the plain expression (each step a new tensor; a compiler
    fuses them). In eager inference the same operations in the same order write into two tensors
    instead of five (softplus in place, then the subtractions in place): bit-identical results, three
    fewer allocations of the largest activations (each a fresh, page-faulting buffer on CPU).
    """
    x32 = x.float()
    if not eager_inference():
        return (F.softplus(x32 - shift) - 0.08 * x32 - offset).to(x.dtype)
    result = torch.sub(x32, shift)
    torch._C._nn.softplus(result, 1.0, 20.0, out=result)  # F.softplus's defaults (beta 1, threshold 20)
    return result.sub_(torch.mul(x32, 0.08)).sub_(offset).to(x.dtype)


class SwooshL(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_l(x)


class SwooshR(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_r(x)
