"""Training-time constraints that act only on gradients (the forward pass is the identity)."""

import random

import torch


class _LimitValue(torch.autograd.Function):
    """Identity whose backward reverses gradient steps that would push a value outside [low, high]."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, low: float, high: float) -> torch.Tensor:
        ctx.save_for_backward(values)
        ctx.low, ctx.high = low, high
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (values,) = ctx.saved_tensors
        # A positive gradient lowers the value (descent): reverse it when already below `low`.
        grad = torch.where((grad > 0) & (values < ctx.low), -grad, grad)
        grad = torch.where((grad < 0) & (values > ctx.high), -grad, grad)
        return grad, None, None


def limit_param_value(values: torch.Tensor, low: float, high: float, training: bool, prob: float = 0.6) -> torch.Tensor:
    """Keep a parameter within [low, high] by correcting its gradient, on a random `prob` of steps."""
    if training and values.requires_grad and random.random() < prob:
        return _LimitValue.apply(values, low, high)
    return values
