"""Zipformer's training-time constraints on activations: Balancer and Whiten.

Both are the identity in the forward pass. In training (when the input requires a gradient) they
add to the gradient, on a random fraction of calls, a term that pushes each channel's statistics
(Balancer: share of positive values and RMS) or the channels' covariance (Whiten: towards a
multiple of the identity) back inside limits. In eval, or without a gradient, they return the
input untouched. `batch_count` drives their schedules (see `schedules.py`).
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn

from .schedules import Schedule, schedule

Limit = float | Schedule


def _value(limit: Limit, batch_count: float | None) -> float:
    return limit(batch_count) if isinstance(limit, Schedule) else float(limit)


def _share_positive_to_mean(share: float) -> float:
    """Mean/std of a Gaussian whose share of positive values is `share` (≈ erfinv(2·share − 1)·√2)."""
    centred = 2.0 * share - 1.0
    eps = 1e-10
    return 0.8139535143 * (math.log(1 + centred + eps) - math.log(1 - centred + eps)) / 2.0


class _BalanceGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: torch.Tensor, limits: tuple[float, float, float, float], grad_scale: float, channel_dim: int):
        ctx.save_for_backward(values)
        ctx.limits, ctx.grad_scale, ctx.channel_dim = limits, grad_scale, channel_dim
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (values,) = ctx.saved_tensors
        min_mean, max_mean, min_rms, max_rms = ctx.limits
        with torch.enable_grad(), torch.autocast(device_type=values.device.type, enabled=False):
            x = values.detach().float().requires_grad_(True)
            dims = [d for d in range(x.ndim) if d != ctx.channel_dim % x.ndim]
            mean_square = (x**2).mean(dim=dims, keepdim=True)
            mean = x.mean(dim=dims, keepdim=True)
            std = (mean_square - mean * mean).clamp(min=1e-20).sqrt()
            rms = mean_square.clamp(min=1e-20).sqrt()
            normalised_mean = mean / std
            violation = (normalised_mean - normalised_mean.clamp(min_mean, max_mean)).abs()
            violation = violation + (rms.clamp(min_rms, max_rms) / rms).log().abs()
            (push,) = torch.autograd.grad(violation.sum(), x)
        push_rms = (push**2).mean(dim=dims, keepdim=True).sqrt().clamp(min=1e-20)
        push = push * (ctx.grad_scale / push_rms)
        grad32 = grad.float()
        return (grad32 + grad32.abs() * push).to(grad.dtype), None, None, None


class Balancer(nn.Module):
    """Keeps each channel's share of positive values in [min_positive, max_positive] and its mean
    absolute value in [min_abs, max_abs], through the gradient only."""

    def __init__(
        self,
        channel_dim: int,
        min_positive: Limit = 0.05,
        max_positive: Limit = 0.95,
        min_abs: Limit = 0.2,
        max_abs: Limit = 100.0,
        grad_scale: float = 0.04,
        prob: Limit | None = None,
    ):
        super().__init__()
        self.channel_dim = channel_dim
        self.min_positive, self.max_positive = min_positive, max_positive
        self.min_abs, self.max_abs = min_abs, max_abs
        self.grad_scale = grad_scale
        self.prob = prob if prob is not None else schedule((0.0, 0.5), (8000.0, 0.125), default=0.4)

    def forward(self, values: torch.Tensor, batch_count: float | None = None) -> torch.Tensor:
        if not (self.training and values.requires_grad) or random.random() >= _value(self.prob, batch_count):
            return values
        abs_to_rms = 1.25331413732  # E|x| → RMS for a Gaussian
        limits = (
            _share_positive_to_mean(_value(self.min_positive, batch_count)),
            _share_positive_to_mean(_value(self.max_positive, batch_count)),
            abs_to_rms * _value(self.min_abs, batch_count),
            abs_to_rms * _value(self.max_abs, batch_count),
        )
        return _BalanceGradient.apply(values, limits, self.grad_scale, self.channel_dim)


def whitening_metric(values: torch.Tensor, num_groups: int) -> torch.Tensor:
    """1.0 when each group's centred covariance is a multiple of the identity (the same multiple
    for all groups), larger otherwise. values (..., channels)."""
    values = values.reshape(-1, values.shape[-1])
    num_frames, channels = values.shape
    grouped = values.reshape(num_frames, num_groups, channels // num_groups).transpose(0, 1)
    grouped = grouped - grouped.mean(dim=1, keepdim=True)
    covariance = torch.matmul(grouped.transpose(1, 2), grouped)
    mean_diagonal = covariance.diagonal(dim1=1, dim2=2).mean()
    mean_square = (covariance**2).sum() / channels
    return mean_square / (mean_diagonal**2 + 1e-20)


class _WhitenGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: torch.Tensor, module: "Whiten", limit: float):
        ctx.save_for_backward(values)
        ctx.module, ctx.limit = module, limit
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (values,) = ctx.saved_tensors
        module = ctx.module
        with torch.enable_grad(), torch.autocast(device_type=values.device.type, enabled=False):
            x = values.detach().float().requires_grad_(True)
            metric = whitening_metric(x, module.num_groups)
            if metric < ctx.limit:
                module.prob = module.min_prob
                return grad, None, None
            module.prob = module.max_prob
            (push,) = torch.autograd.grad(metric, x)
        scale = module.grad_scale * grad.float().norm() / (push.norm() + 1e-20)
        return grad + (push * scale).to(grad.dtype), None, None


class Whiten(nn.Module):
    """Keeps the channel covariance (within `num_groups` groups) close to white, through the
    gradient only, when the whitening metric exceeds `whitening_limit`. It checks on a fraction
    `prob` of calls: `max_prob` after a violation, `min_prob` otherwise."""

    def __init__(self, num_groups: int, whitening_limit: Limit, prob: tuple[float, float], grad_scale: float):
        super().__init__()
        self.num_groups = num_groups
        self.whitening_limit = whitening_limit
        self.min_prob, self.max_prob = prob
        self.prob = self.max_prob
        self.grad_scale = grad_scale

    def training_state(self) -> dict:
        """State that evolves in training but is not a weight (checkpointed by the training loop)."""
        return {"prob": self.prob}

    def load_training_state(self, state: dict) -> None:
        self.prob = state["prob"]

    def forward(self, values: torch.Tensor, batch_count: float | None = None) -> torch.Tensor:
        if not (self.training and values.requires_grad) or random.random() > self.prob:
            return values
        return _WhitenGradient.apply(values, self, _value(self.whitening_limit, batch_count))


def whitening_schedule(start: float, ratio: float = 2.0) -> Schedule:
    """A whitening limit that relaxes from `start` to `ratio · start` over 20k batches."""
    return schedule((0.0, start), (20000.0, ratio * start), default=start)


class _PenaliseLarge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: torch.Tensor, limit: float, penalty: float):
        ctx.save_for_backward(values)
        ctx.limit, ctx.penalty = limit, penalty
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (values,) = ctx.saved_tensors
        excess = (values.abs() > ctx.limit).to(grad.dtype) * values.sign().to(grad.dtype)
        return grad + ctx.penalty * excess, None, None


def penalize_large_values(values: torch.Tensor, limit: float, penalty: float) -> torch.Tensor:
    """Identity whose gradient adds `penalty · sign(x)` where |x| > limit (pulls outliers in)."""
    return _PenaliseLarge.apply(values, limit, penalty)


class ScaleGradient(torch.autograd.Function):
    """Identity whose gradient is multiplied by `scale`."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, scale: float):
        ctx.scale = scale
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None
