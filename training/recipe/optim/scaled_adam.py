"""ScaledAdam: Adam whose step is relative to each parameter's size, with learned parameter scales.

The optimiser of the paper (Zipformer's ScaledAdam). For a tensor parameter `p` with root-mean-square
value `rms(p)`, one step before momentum is

    delta = -lr * rms(p) * grad / sqrt(second_moment(grad))

so every tensor changes by the same *relative* amount whatever its size, and the scale `rms(p)` is
itself learned (as if `p = direction * exp(log_scale)`) with learning rate `lr * scalar_lr_scale`,
bounded to `[param_min_rms, param_max_rms]`. Parameters with a single element are plain Adam with
learning rate `lr * scalar_lr_scale`, clamped to `[-scalar_max, scalar_max]`. Momentum (beta1) is
applied to the final delta.

Gradient clipping is relative: the gradient norm of the whole model (each tensor's gradient weighted
by its `rms(p)`, because that is how the step sees it) is clipped to `clipping_scale` times the
median of the norms seen over the last `clipping_update_period` steps. One threshold covers every
param group (icefall keeps one per group), so splitting the model into learning-rate groups does not
change the clipping. A step whose gradient norm is not finite is skipped and logged.

Parameters are updated one tensor at a time (no stacking of same-shaped tensors as in icefall):
simpler to read, at the cost of more kernel launches per step on a GPU.
"""

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import Optimizer

logger = logging.getLogger(__name__)

# The clipping threshold is first estimated after this many steps (with a doubled margin, because
# norms move quickly at the start), then every `clipping_update_period` steps.
_EARLY_THRESHOLD_STEPS = (10, 20, 40)
_EARLY_THRESHOLD_MARGIN = 2.0
# Largest relative change of a parameter's scale in one scale update (either direction).
_MAX_SCALE_STEP = 0.1


@dataclass(frozen=True)
class GradientClipping:
    """What the clipping did on one optimiser step.

    Attributes:
        step: optimiser step (0-based) this record belongs to.
        gradient_norm: rms-weighted gradient norm of the whole model on that step.
        threshold: the norm above which gradients are scaled down; `None` before the first estimate.
        factor: the factor the gradients were multiplied by (1.0 when not clipped, 0.0 when the
            gradient was not finite and the step was skipped).
        dominant_parameter: the name of the parameter with the largest share of the norm, only
            filled in when the gradient was clipped.
    """

    step: int
    gradient_norm: float
    threshold: float | None
    factor: float
    dominant_parameter: str | None = None


class ScaledAdam(Optimizer):
    """Zipformer's ScaledAdam optimiser (see the module docstring for the update rule).

    Args:
        params: `model.parameters()`, `model.named_parameters()` (names let the clipping report
            which parameter dominates a gradient spike) or a list of param-group dicts whose
            "params" are tensors or `(name, tensor)` pairs.
        lr: base learning rate; the paper uses 0.045 with the Eden schedule.
        clipping_scale: clip the whole-model gradient norm to this times the recent median; `None`
            disables clipping.
        betas: (momentum, second-moment) decay rates.
        scalar_lr_scale: learning-rate factor for parameter scales and one-element parameters.
        eps: added to the root of the second moment.
        param_min_rms: the scale used for the step never goes below this, and a parameter whose
            rms is below it keeps its scale.
        param_max_rms: the learned scale never pushes a parameter's rms above this.
        scalar_max: one-element parameters are clamped to `[-scalar_max, scalar_max]`.
        size_update_period: steps between updates of each parameter's scale.
        clipping_update_period: number of recent steps whose median norm sets the threshold.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[tuple[str, torch.Tensor]] | Iterable[dict[str, Any]],
        lr: float = 0.045,
        clipping_scale: float | None = 2.0,
        betas: tuple[float, float] = (0.9, 0.98),
        scalar_lr_scale: float = 0.1,
        eps: float = 1.0e-8,
        param_min_rms: float = 1.0e-5,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        size_update_period: int = 4,
        clipping_update_period: int = 100,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0; got {lr}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 < betas[1] < 1.0:
            raise ValueError(f"betas must satisfy 0 <= beta1 < 1 and 0 < beta2 < 1; got {betas}")
        if clipping_scale is not None and clipping_scale <= 0.0:
            raise ValueError(f"clipping_scale must be > 0 or None (no clipping); got {clipping_scale}")
        if not 0.0 < param_min_rms < param_max_rms:
            raise ValueError(
                f"need 0 < param_min_rms < param_max_rms; got {param_min_rms} and {param_max_rms}"
            )
        if size_update_period < 1 or clipping_update_period < 1:
            raise ValueError(
                "size_update_period and clipping_update_period must be >= 1; got "
                f"{size_update_period} and {clipping_update_period}"
            )
        defaults = dict(
            lr=lr,
            betas=betas,
            scalar_lr_scale=scalar_lr_scale,
            eps=eps,
            param_min_rms=param_min_rms,
            param_max_rms=param_max_rms,
            scalar_max=scalar_max,
            size_update_period=size_update_period,
        )
        super().__init__(params, defaults)
        self.clipping_scale = clipping_scale
        self.clipping_update_period = clipping_update_period
        self._init_clipping_state()
        self.last_clipping: GradientClipping | None = None

    def _init_clipping_state(self) -> None:
        self._num_steps = 0
        self._recent_norms = torch.zeros(self.clipping_update_period, dtype=torch.float64)
        self._num_recent_norms = 0
        self._clipping_threshold: float | None = None
        self._num_clipped = 0

    # ----------------------------------------------------------------------------------------
    # The step
    # ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """Update every parameter that has a gradient; those whose `.grad` is None stay as they are."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._init_param_state(group, param)

        clip_factor = self._clipping_factor()
        if clip_factor > 0.0:
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        self._update_param(group, param, param.grad * clip_factor)
        self._num_steps += 1
        return loss

    def _init_param_state(self, group: dict[str, Any], param: torch.Tensor) -> None:
        if param.grad.is_sparse:
            raise RuntimeError("ScaledAdam does not support sparse gradients; use dense embeddings")
        state = self.state[param]
        if state:
            return
        state["step"] = 0
        state["exp_avg_sq"] = torch.zeros_like(param, dtype=torch.float32)
        state["momentum"] = torch.zeros_like(param, dtype=torch.float32)
        if param.numel() > 1:
            state["param_rms"] = _rms(param)
            state["scale_grads"] = torch.zeros(
                group["size_update_period"], dtype=torch.float32, device=param.device
            )
            state["scale_exp_avg_sq"] = torch.zeros((), dtype=torch.float32, device=param.device)

    def _update_param(self, group: dict[str, Any], param: torch.Tensor, grad: torch.Tensor) -> None:
        """One ScaledAdam step of one parameter, given its (already clipped) gradient."""
        state = self.state[param]
        grad = grad.to(torch.float32)
        if param.numel() == 1:
            delta = self._adam_direction(group, state, grad) * -(group["lr"] * group["scalar_lr_scale"])
        else:
            delta = self._adam_direction(group, state, grad) * -group["lr"]
            delta = self._scale_relative_delta(group, state, param, grad, delta)

        beta1 = group["betas"][0]
        # No bias correction for momentum: the slower first few steps help stability.
        state["momentum"].mul_(beta1).add_(delta, alpha=1.0 - beta1)
        param.add_(state["momentum"].to(param.dtype))
        if param.numel() == 1:
            param.clamp_(-group["scalar_max"], group["scalar_max"])
        state["step"] += 1

    @staticmethod
    def _adam_direction(group: dict[str, Any], state: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        """grad / sqrt(bias-corrected second moment): unit-sized, sign-like, same shape as grad."""
        beta2 = group["betas"][1]
        exp_avg_sq = state["exp_avg_sq"]
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        bias_correction = 1.0 - beta2 ** (state["step"] + 1)
        return grad / (exp_avg_sq / bias_correction).sqrt().add_(group["eps"])

    def _scale_relative_delta(
        self,
        group: dict[str, Any],
        state: dict[str, Any],
        param: torch.Tensor,
        grad: torch.Tensor,
        delta: torch.Tensor,
    ) -> torch.Tensor:
        """Multiply the Adam step by the parameter's rms, and every `size_update_period` steps add a
        step on the parameter's log-scale."""
        step = state["step"]
        period = group["size_update_period"]
        # d loss / d log_scale on this step, collected and applied once per period (cheaper).
        state["scale_grads"][step % period] = (param.to(torch.float32) * grad).sum()
        end_of_period = step % period == period - 1
        if end_of_period:
            state["param_rms"].copy_(_rms(param))

        delta = delta * state["param_rms"].clamp(min=group["param_min_rms"])
        if end_of_period and step > 0:
            delta = delta + param.to(torch.float32) * self._log_scale_step(group, state)
        return delta

    @staticmethod
    def _log_scale_step(group: dict[str, Any], state: dict[str, Any]) -> torch.Tensor:
        """Relative change of the parameter's scale (a 0-d tensor), Adam on the log-scale."""
        period = group["size_update_period"]
        beta2 = group["betas"][1] ** period  # one scale update per `period` steps
        scale_grads = state["scale_grads"]
        scale_exp_avg_sq = state["scale_exp_avg_sq"]
        scale_exp_avg_sq.mul_(beta2).add_((scale_grads**2).mean(), alpha=1.0 - beta2)
        num_scale_updates = (state["step"] + 1) // period
        bias_correction = 1.0 - beta2**num_scale_updates
        denom = scale_exp_avg_sq.sqrt() + group["eps"]
        scale_lr = group["lr"] * group["scalar_lr_scale"]
        scale_step = -scale_lr * math.sqrt(bias_correction) * scale_grads.sum() / denom

        param_rms = state["param_rms"]
        scale_step = scale_step.clamp(-_MAX_SCALE_STEP, _MAX_SCALE_STEP)
        scale_step = torch.minimum(scale_step, (group["param_max_rms"] - param_rms) / param_rms)
        # A parameter that has shrunk below param_min_rms keeps its scale (torch.where: no GPU sync).
        return torch.where(param_rms < group["param_min_rms"], torch.zeros_like(scale_step), scale_step)

    # ----------------------------------------------------------------------------------------
    # Gradient clipping
    # ----------------------------------------------------------------------------------------

    def _clipping_factor(self) -> float:
        """Factor (<= 1) for this step's gradients; 0.0 means the gradient is not finite: skip the step."""
        if self.clipping_scale is None:
            return 1.0
        names, norms_sq = self._weighted_grad_norms_sq()
        if not names:
            return 1.0
        norm = norms_sq.sum().sqrt().item()  # the one host sync of the clipping
        if not math.isfinite(norm):
            logger.warning("step %d: gradient norm is %s; skipping the update", self._num_steps, norm)
            self.last_clipping = GradientClipping(self._num_steps, norm, self._clipping_threshold, 0.0)
            return 0.0

        self._record_norm(norm)
        if self._is_threshold_update_step():
            self._update_threshold()

        threshold = self._clipping_threshold
        factor = 1.0 if threshold is None else min(1.0, threshold / (norm + 1e-20))
        dominant = None
        if factor < 1.0:
            self._num_clipped += 1
            dominant_index = int(norms_sq.argmax())
            dominant = names[dominant_index]
            if factor < 0.5:
                share = norms_sq[dominant_index].item() / norm**2
                logger.warning(
                    "step %d: scaling gradients by %.3f (norm %.3e > threshold %.3e); "
                    "%s has %.0f%% of the squared norm",
                    self._num_steps, factor, norm, threshold, dominant, 100 * share,
                )
        self.last_clipping = GradientClipping(self._num_steps, norm, threshold, factor, dominant)
        return factor

    def _weighted_grad_norms_sq(self) -> tuple[list[str], torch.Tensor]:
        """Names and squared gradient norms (float32, shape (num_params_with_grad,)) of the parameters,
        as the step sees them: weighted by the parameter's rms (by `scalar_lr_scale` for one-element
        parameters). Unnamed parameters are called `group{g}.param{i}`."""
        names, norms_sq = [], []
        for group_index, group in enumerate(self.param_groups):
            group_names = group.get("param_names") or [
                f"group{group_index}.param{i}" for i in range(len(group["params"]))
            ]
            for name, param in zip(group_names, group["params"]):
                if param.grad is None:
                    continue
                weight = group["scalar_lr_scale"] if param.numel() == 1 else self.state[param]["param_rms"]
                names.append(name)
                norms_sq.append(((param.grad.to(torch.float32) * weight) ** 2).sum())
        if not norms_sq:
            return names, torch.zeros(0)
        device = norms_sq[0].device
        return names, torch.stack([value.to(device) for value in norms_sq])

    def _is_threshold_update_step(self) -> bool:
        step = self._num_steps
        if step in _EARLY_THRESHOLD_STEPS and step < self.clipping_update_period:
            return True
        return step > 0 and step % self.clipping_update_period == 0

    def _record_norm(self, norm: float) -> None:
        self._recent_norms[self._num_recent_norms % self.clipping_update_period] = norm
        self._num_recent_norms += 1

    def _update_threshold(self) -> None:
        num_valid = min(self._num_recent_norms, self.clipping_update_period)
        recent = self._recent_norms[:num_valid]
        median = recent.median().item()
        early = self._num_steps < self.clipping_update_period
        margin = _EARLY_THRESHOLD_MARGIN if early else 1.0
        self._clipping_threshold = self.clipping_scale * median * margin
        quartiles = torch.quantile(recent, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=recent.dtype))
        logger.info(
            "step %d: grad-norm quartiles %s, clipping threshold %.3e, clipped %.1f%% of recent steps",
            self._num_steps,
            " ".join(f"{value:.3e}" for value in quartiles.tolist()),
            self._clipping_threshold,
            100.0 * self._num_clipped / num_valid,
        )
        self._num_clipped = 0

    # ----------------------------------------------------------------------------------------
    # Checkpointing
    # ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The standard optimizer state plus the clipping history, so a resumed run continues exactly."""
        state = super().state_dict()
        state["gradient_clipping"] = {
            "num_steps": self._num_steps,
            "recent_norms": self._recent_norms.clone(),
            "num_recent_norms": self._num_recent_norms,
            "threshold": self._clipping_threshold,
            "num_clipped": self._num_clipped,
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        clipping = state_dict.pop("gradient_clipping", None)
        if clipping is None:
            raise ValueError(
                "this state dict has no 'gradient_clipping' entry, so it was not written by "
                "ScaledAdam.state_dict(); load a ScaledAdam checkpoint or start the optimizer afresh"
            )
        super().load_state_dict(state_dict)
        if len(clipping["recent_norms"]) != self.clipping_update_period:
            raise ValueError(
                f"checkpoint used clipping_update_period={len(clipping['recent_norms'])} but this "
                f"optimizer has {self.clipping_update_period}; construct it with the same value"
            )
        self._num_steps = clipping["num_steps"]
        self._recent_norms = clipping["recent_norms"].clone().to(torch.float64)
        self._num_recent_norms = clipping["num_recent_norms"]
        self._clipping_threshold = clipping["threshold"]
        self._num_clipped = clipping["num_clipped"]


def _rms(param: torch.Tensor) -> torch.Tensor:
    """Root-mean-square of all elements, as a float32 0-d tensor."""
    return param.detach().to(torch.float32).pow(2).mean().sqrt()
