"""Build the optimizer and schedule of a training run from its configuration values."""

from typing import Any, Literal

import torch
from torch import nn
from torch.optim import Optimizer

from training_mt2kd.recipe.optim.eden import Eden
from training_mt2kd.recipe.optim.scaled_adam import ScaledAdam

OPTIMIZER_NAMES = ("scaled_adam", "adamw")


def build_optimizer(
    model: nn.Module,
    name: Literal["scaled_adam", "adamw"] = "scaled_adam",
    lr: float = 0.045,
    weight_decay: float = 0.0,
    lr_scales: dict[str, float] | None = None,
    **optimizer_kwargs: Any,
) -> Optimizer:
    """An optimizer over the model's trainable parameters, grouped by learning-rate scale.

    Args:
        model: the unwrapped model (build the optimizer before `accelerator.prepare`, so names
            carry no "module." prefix).
        name: "scaled_adam" (the paper; lr 0.045) or "adamw".
        lr: base learning rate.
        weight_decay: AdamW's decoupled weight decay, applied to matrices only (not to biases and
            norm scales, i.e. tensors with fewer than 2 dims). Must be 0 for ScaledAdam, which
            bounds parameter sizes with `param_max_rms` instead.
        lr_scales: {name prefix: factor}. A parameter whose dotted name equals a prefix or starts
            with `prefix + "."` gets lr * factor (the longest matching prefix wins); a factor of 0
            freezes it: `requires_grad` is turned off and it is left out of the optimizer.
        **optimizer_kwargs: passed on to the optimizer (e.g. `clipping_scale`, `betas`).

    Parameter names are given to the optimizer, so ScaledAdam can name the parameter that
    dominates a clipped gradient.
    """
    _check_optimizer_options(name, weight_decay, lr_scales or {})
    groups = _parameter_groups(model, weight_decay, dict(lr_scales or {}))
    param_groups = []
    for (scale, decay), named_params in groups.items():
        group: dict[str, Any] = {"params": named_params, "lr": lr * scale, "lr_scale": scale}
        if name == "adamw":
            group["weight_decay"] = decay
        param_groups.append(group)
    if name == "scaled_adam":
        return ScaledAdam(param_groups, lr=lr, **optimizer_kwargs)
    return torch.optim.AdamW(param_groups, lr=lr, **optimizer_kwargs)


def _check_optimizer_options(name: str, weight_decay: float, lr_scales: dict[str, float]) -> None:
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZER_NAMES}")
    if name == "scaled_adam" and weight_decay != 0.0:
        raise ValueError(
            f"ScaledAdam has no weight decay (param_max_rms bounds parameter sizes); got "
            f"weight_decay={weight_decay}: pass 0.0, or name='adamw'"
        )
    for prefix, scale in lr_scales.items():
        if scale < 0.0:
            raise ValueError(
                f"lr_scales[{prefix!r}] = {scale} is negative; use 0 to freeze, or a positive factor"
            )


def _parameter_groups(
    model: nn.Module, weight_decay: float, lr_scales: dict[str, float]
) -> dict[tuple[float, float], list[tuple[str, nn.Parameter]]]:
    """Trainable named parameters by (lr scale, weight decay); scale-0 parameters are frozen."""
    groups: dict[tuple[float, float], list[tuple[str, nn.Parameter]]] = {}
    used_prefixes: set[str] = set()
    for param_name, param in model.named_parameters():
        prefix = _longest_matching_prefix(param_name, lr_scales)
        if prefix is not None:
            used_prefixes.add(prefix)
        if not param.requires_grad:
            continue
        scale = 1.0 if prefix is None else lr_scales[prefix]
        if scale == 0.0:
            param.requires_grad_(False)
            continue
        decay = weight_decay if param.ndim >= 2 else 0.0
        groups.setdefault((scale, decay), []).append((param_name, param))

    unused = sorted(set(lr_scales) - used_prefixes)
    if unused:
        top_level = sorted({param_name.split(".")[0] for param_name, _ in model.named_parameters()})
        raise ValueError(
            f"lr_scales prefixes {unused} match no parameter; parameter names start with {top_level}"
        )
    if not groups:
        raise ValueError("the model has no trainable parameter left (all frozen or lr scale 0)")
    return groups


def build_scheduler(
    optimizer: Optimizer,
    lr_batches: float = 7500,
    lr_epochs: float = 3.5,
    warmup_batches: float = 500,
    warmup_start: float = 0.5,
) -> Eden:
    """The paper's Eden schedule over the optimizer's current learning rates (see `Eden`)."""
    return Eden(
        optimizer,
        lr_batches=lr_batches,
        lr_epochs=lr_epochs,
        warmup_batches=warmup_batches,
        warmup_start=warmup_start,
    )


def _longest_matching_prefix(param_name: str, prefixes: dict[str, float]) -> str | None:
    matches = [
        prefix for prefix in prefixes
        if param_name == prefix or param_name.startswith(prefix.rstrip(".") + ".")
    ]
    return max(matches, key=len, default=None)
