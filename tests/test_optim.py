"""Specification of training_mt2kd.recipe.optim: ScaledAdam, Eden, build_optimizer and ModelAverager."""

import io
import logging

import pytest
import torch
from torch import nn

from training_mt2kd.recipe.optim import Eden, ModelAverager, ScaledAdam, build_optimizer, build_scheduler


def _regression_problem(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(128, 16, generator=generator)
    targets = inputs @ torch.randn(16, 4, generator=generator) + 0.5
    torch.manual_seed(seed)
    return nn.Linear(16, 4), inputs, targets


def _train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor
) -> float:
    optimizer.zero_grad()
    loss = ((model(inputs) - targets) ** 2).mean()
    loss.backward()
    optimizer.step()
    return loss.item()


# ---- ScaledAdam ----------------------------------------------------------------------------


def test_scaled_adam_fits_a_small_linear_regression():
    model, inputs, targets = _regression_problem()
    optimizer = ScaledAdam(model.parameters(), lr=0.045)
    first_loss = _train_step(model, optimizer, inputs, targets)
    for _ in range(200):
        last_loss = _train_step(model, optimizer, inputs, targets)
    assert last_loss < first_loss / 100


def test_first_update_is_relative_to_parameter_rms():
    direction = torch.randn(32, 32)
    small = nn.Parameter(0.01 * direction / direction.pow(2).mean().sqrt())
    large = nn.Parameter(1.0 * direction / direction.pow(2).mean().sqrt())
    lr, beta1 = 0.045, 0.9
    optimizer = ScaledAdam([small, large], lr=lr, betas=(beta1, 0.98), clipping_scale=None)
    before = [small.detach().clone(), large.detach().clone()]
    gradient = torch.randn(32, 32)
    small.grad, large.grad = gradient.clone(), gradient.clone()
    optimizer.step()
    # Adam's first step is sign-like, so each element moves by (1 - beta1) * lr * rms(param).
    for param, old, rms in zip([small, large], before, [0.01, 1.0]):
        update_rms = (param.detach() - old).pow(2).mean().sqrt().item()
        assert update_rms == pytest.approx((1 - beta1) * lr * rms, rel=1e-4)


def test_parameter_below_param_min_rms_steps_with_param_min_rms():
    zero = nn.Parameter(torch.zeros(8, 8))
    optimizer = ScaledAdam([zero], lr=0.045, clipping_scale=None, param_min_rms=1e-5)
    zero.grad = torch.ones(8, 8)
    optimizer.step()
    assert zero.detach().abs().max().item() == pytest.approx(0.1 * 0.045 * 1e-5, rel=1e-4)


def test_parameters_without_gradient_are_left_unchanged():
    used, unused = nn.Parameter(torch.randn(4, 4)), nn.Parameter(torch.randn(4, 4))
    before = unused.detach().clone()
    optimizer = ScaledAdam(
        [("used", used), ("unused", unused)], lr=0.045, clipping_scale=2.0, clipping_update_period=4
    )
    for _ in range(12):
        optimizer.zero_grad()
        used.sum().backward()
        optimizer.step()
    assert torch.equal(unused.detach(), before)
    assert unused not in optimizer.state


def test_clipping_scales_down_a_gradient_spike_and_names_the_dominant_parameter(caplog):
    model, inputs, targets = _regression_problem()
    optimizer = ScaledAdam(model.named_parameters(), lr=0.01, clipping_scale=2.0)
    for _ in range(45):  # the clipping threshold is first estimated at steps 10, 20 and 40
        _train_step(model, optimizer, inputs, targets)
    assert optimizer.last_clipping.threshold is not None
    assert optimizer.last_clipping.factor == 1.0

    optimizer.zero_grad()
    ((model(inputs) - targets) ** 2).mean().backward()
    model.weight.grad *= 1000.0
    with caplog.at_level(logging.WARNING, logger="training_mt2kd.recipe.optim.scaled_adam"):
        optimizer.step()
    clipping = optimizer.last_clipping
    assert clipping.factor < 0.01
    assert clipping.factor == pytest.approx(clipping.threshold / clipping.gradient_norm)
    assert clipping.dominant_parameter == "weight"
    assert "weight" in caplog.text


def test_non_finite_gradient_skips_the_step():
    model, inputs, targets = _regression_problem()
    optimizer = ScaledAdam(model.parameters(), lr=0.045)
    _train_step(model, optimizer, inputs, targets)
    before = [param.detach().clone() for param in model.parameters()]
    model.weight.grad = torch.full_like(model.weight, float("inf"))
    optimizer.step()
    assert optimizer.last_clipping.factor == 0.0
    assert all(torch.equal(param.detach(), old) for param, old in zip(model.parameters(), before))


def _run(num_steps: int, resume_after: int | None) -> list[torch.Tensor]:
    """Train with ScaledAdam + Eden; optionally save everything after `resume_after` steps and
    continue in freshly built objects loaded from the checkpoint. clipping_scale=0.5 keeps the
    clipping active, so its history has to survive the round trip too."""
    model, inputs, targets = _regression_problem()
    optimizer = ScaledAdam(
        model.named_parameters(), lr=0.045, clipping_scale=0.5, clipping_update_period=8
    )
    scheduler = Eden(optimizer, lr_batches=10, lr_epochs=1, warmup_batches=5)
    for step in range(num_steps):
        if step == resume_after:
            buffer = io.BytesIO()
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            }
            torch.save(checkpoint, buffer)
            buffer.seek(0)
            checkpoint = torch.load(buffer)  # weights_only: what Accelerate loads
            model, _, _ = _regression_problem(seed=1)  # different initial weights: all must come back
            model.load_state_dict(checkpoint["model"])
            optimizer = ScaledAdam(
                model.named_parameters(), lr=0.045, clipping_scale=0.5, clipping_update_period=8
            )
            scheduler = Eden(optimizer, lr_batches=10, lr_epochs=1, warmup_batches=5)
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
        _train_step(model, optimizer, inputs, targets)
        scheduler.step_batch()
    return [param.detach() for param in model.parameters()]


def test_state_dict_round_trip_continues_bitwise():
    uninterrupted = _run(num_steps=30, resume_after=None)
    resumed = _run(num_steps=30, resume_after=13)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted, resumed))


# ---- Eden ----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch, epoch", [(0, 0), (250, 0), (500, 1), (7500, 3.5), (20000, 10)])
def test_eden_learning_rate_matches_the_formula(batch, epoch):
    optimizer = ScaledAdam([nn.Parameter(torch.randn(3, 3))], lr=0.045)
    scheduler = Eden(optimizer, lr_batches=7500, lr_epochs=3.5, warmup_batches=500)
    scheduler.step_epoch(epoch)
    scheduler.step_batch(batch)
    warmup = 0.5 + 0.5 * batch / 500 if batch < 500 else 1.0
    expected = (
        0.045
        * ((batch**2 + 7500**2) / 7500**2) ** -0.25
        * ((epoch**2 + 3.5**2) / 3.5**2) ** -0.25
        * warmup
    )
    assert scheduler.get_last_lr() == [pytest.approx(expected, rel=1e-12)]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)


def test_eden_starts_at_the_warmup_rate():
    optimizer = torch.optim.AdamW([nn.Parameter(torch.randn(3))], lr=1e-3)
    Eden(optimizer, warmup_batches=500, warmup_start=0.5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)


def test_eden_keeps_per_group_learning_rate_ratios_with_adamw():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    optimizer = build_optimizer(model, "adamw", lr=1e-3, weight_decay=0.01, lr_scales={"1": 0.1})
    scheduler = build_scheduler(optimizer, lr_batches=100, lr_epochs=2)
    scheduler.step_batch(1000)
    rates = {group["lr_scale"]: group["lr"] for group in optimizer.param_groups}
    assert rates[0.1] == pytest.approx(0.1 * rates[1.0])
    assert rates[1.0] == pytest.approx(1e-3 * scheduler.factor(1000, 0))


# ---- build_optimizer -----------------------------------------------------------------------


def _two_part_model() -> nn.Module:
    return nn.ModuleDict(
        {"encoder": nn.Linear(4, 4), "encoder_head": nn.Linear(4, 2), "head": nn.Linear(2, 2)}
    )


def test_lr_scales_apply_to_dotted_name_prefixes():
    optimizer = build_optimizer(_two_part_model(), "scaled_adam", lr=0.045, lr_scales={"encoder": 0.5})
    lr_by_name = {
        name: group["lr"] for group in optimizer.param_groups for name in group["param_names"]
    }
    assert lr_by_name["encoder.weight"] == pytest.approx(0.0225)
    assert lr_by_name["encoder_head.weight"] == pytest.approx(0.045)  # "encoder" is not its prefix
    assert lr_by_name["head.bias"] == pytest.approx(0.045)


def test_lr_scale_zero_freezes_the_parameters():
    model = _two_part_model()
    optimizer = build_optimizer(model, "scaled_adam", lr_scales={"encoder": 0.0})
    optimized = {id(param) for group in optimizer.param_groups for param in group["params"]}
    assert not model["encoder"].weight.requires_grad
    assert id(model["encoder"].weight) not in optimized
    assert id(model["head"].weight) in optimized


def test_unknown_lr_scale_prefix_is_an_error_naming_it():
    with pytest.raises(ValueError, match="encodr"):
        build_optimizer(_two_part_model(), "scaled_adam", lr_scales={"encodr": 0.5})


def test_scaled_adam_rejects_weight_decay():
    with pytest.raises(ValueError, match="weight_decay=0.01"):
        build_optimizer(_two_part_model(), "scaled_adam", weight_decay=0.01)


def test_adamw_decays_matrices_but_not_biases():
    optimizer = build_optimizer(_two_part_model(), "adamw", lr=1e-3, weight_decay=0.01)
    decay_by_name = {
        name: group["weight_decay"] for group in optimizer.param_groups for name in group["param_names"]
    }
    assert decay_by_name["head.weight"] == 0.01
    assert decay_by_name["head.bias"] == 0.0


# ---- ModelAverager -------------------------------------------------------------------------


def test_model_average_is_the_mean_of_the_snapshots_at_each_period():
    model = nn.Linear(3, 2)
    averager = ModelAverager(model, average_period=2)
    snapshots = []
    for batch in range(1, 9):
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param))
        if averager.update(model, batch):
            snapshots.append({name: value.clone() for name, value in model.state_dict().items()})
    assert len(snapshots) == 4
    averaged = averager.averaged_state_dict()
    for name in averaged:
        expected = torch.stack([snapshot[name] for snapshot in snapshots]).mean(0)
        torch.testing.assert_close(averaged[name], expected)


def test_model_average_resumes_from_its_state_dict_and_copies_into_a_model():
    model = nn.Linear(3, 2)
    averager = ModelAverager(model, average_period=1)
    averager.update(model, 1)
    with torch.no_grad():
        model.weight.add_(1.0)
    restored = ModelAverager(nn.Linear(3, 2), average_period=1)
    restored.load_state_dict(averager.state_dict())
    averager.update(model, 2)
    restored.update(model, 2)
    target = nn.Linear(3, 2)
    restored.copy_to(target)
    for name, value in averager.averaged_state_dict().items():
        assert torch.equal(target.state_dict()[name], value)
