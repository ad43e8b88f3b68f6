"""Training-only regularisers: active in training as in the authors' recipe, inert in eval."""

import random

import pytest
import torch

from modeling_mt2kd.encoder.activation_constraints import Balancer, Whiten, penalize_large_values, whitening_metric
from modeling_mt2kd.encoder.gradient_limits import limit_param_value
from modeling_mt2kd.encoder.schedules import schedule


def test_schedule_is_piecewise_linear_in_the_batch_count_and_default_in_eval():
    rate = schedule((0.0, 0.3), (20000.0, 0.1), default=0.0)
    assert rate(None) == 0.0 and rate(500.0, training=False) == 0.0
    assert rate(-5.0) == 0.3 and rate(10000.0) == pytest.approx(0.2) and rate(1e6) == 0.1


def gradient(module, values: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    values = values.clone().requires_grad_(True)
    (module(values) * upstream).sum().backward()
    return values.grad


def test_balancer_is_the_identity_forward_and_in_eval():
    balancer = Balancer(channel_dim=-1, min_positive=0.5, max_positive=0.9, prob=1.0)
    values = torch.randn(50, 4)
    assert torch.equal(balancer.train()(values), values)
    upstream = torch.randn(50, 4)
    assert torch.equal(gradient(balancer.eval(), -values.abs(), upstream), upstream)


def test_balancer_pushes_a_channel_that_is_never_positive_upwards():
    torch.manual_seed(0)
    balancer = Balancer(channel_dim=-1, min_positive=0.4, max_positive=0.9, min_abs=0.0, max_abs=100.0, prob=1.0).train()
    negative = -torch.rand(200, 3) - 0.1
    upstream = torch.ones(200, 3) * 1e-3
    grad = gradient(balancer, negative, upstream)
    # The balancer's share of a descent step (x -= lr * grad) raises every channel's mean.
    assert ((grad - upstream).sum(dim=0) < 0).all()


def test_balancer_shrinks_channels_above_their_maximum_magnitude():
    balancer = Balancer(channel_dim=-1, min_positive=0.0, max_positive=1.0, min_abs=0.0, max_abs=1.0, prob=1.0).train()
    large = torch.randn(300, 2) * 20
    upstream = torch.full((300, 2), 1e-3)
    grad = gradient(balancer, large, upstream)
    step = -(grad - upstream)  # the balancer's own contribution to a descent step
    assert (step * large.sign() < 0).float().mean() > 0.9


def test_whiten_adds_a_gradient_only_when_the_covariance_is_far_from_white():
    random.seed(0)
    whiten = Whiten(num_groups=1, whitening_limit=2.0, prob=(1.0, 1.0), grad_scale=0.1).train()
    white = torch.randn(500, 8)
    correlated = torch.randn(500, 1).expand(500, 8) + 0.01 * torch.randn(500, 8)
    assert whitening_metric(white, 1) < 2.0 < whitening_metric(correlated, 1)
    upstream = torch.randn(500, 8)
    assert torch.equal(gradient(whiten, white, upstream), upstream)
    assert not torch.allclose(gradient(whiten, correlated, upstream), upstream)
    assert torch.equal(gradient(whiten.eval(), correlated, upstream), upstream)


def test_large_value_penalty_and_parameter_limits_only_touch_gradients():
    values = torch.tensor([-30.0, 1.0, 40.0], requires_grad=True)
    out = penalize_large_values(values, limit=25.0, penalty=1e-4)
    assert torch.equal(out, values)
    out.sum().backward()
    torch.testing.assert_close(values.grad, torch.tensor([1 - 1e-4, 1.0, 1 + 1e-4]))

    # (in training it acts on a random 60 % of calls; prob=1.0 makes it act now)
    scale = torch.tensor([0.05, 0.5, 1.5], requires_grad=True)
    limited = limit_param_value(scale, 0.2, 1.0, training=True, prob=1.0)
    (limited * torch.tensor([1.0, 1.0, -1.0])).sum().backward()
    # Below the minimum a positive gradient (which would lower it further) is reversed; above the
    # maximum a negative one is reversed; inside, the gradient is untouched.
    torch.testing.assert_close(scale.grad, torch.tensor([-1.0, 1.0, 1.0]))
