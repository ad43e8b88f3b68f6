"""A running average of a model's weights over training (icefall's `model_avg`)."""

from typing import Any

import torch
from torch import nn


class ModelAverager:
    """Average of the model's state over every `average_period`-th batch so far, kept on CPU in fp32.

    At batch `b` (a multiple of `average_period`) the average becomes
    `average * (1 - average_period / b) + model * (average_period / b)`, so after the updates at
    batches p, 2p, ..., kp it is the plain mean of those k snapshots. Floating-point entries of the
    state dict (parameters and buffers such as norm statistics) are averaged; integer buffers are
    copied from the latest model.

    Args:
        model: the unwrapped model (`accelerator.unwrap_model(model)`), whose current state starts
            the average.
        average_period: batches between updates.
    """

    def __init__(self, model: nn.Module, average_period: int = 200) -> None:
        if average_period < 1:
            raise ValueError(f"average_period must be >= 1; got {average_period}")
        self.average_period = average_period
        self.last_update_batch = 0
        self._average = {name: _cpu_copy(value) for name, value in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, batch: int) -> bool:
        """Fold the model in if `batch` (optimizer steps since the start) is a positive multiple of
        average_period; returns whether it did."""
        if batch <= 0 or batch % self.average_period != 0:
            return False
        if batch <= self.last_update_batch:
            raise ValueError(
                f"batch {batch} is not after the last update at batch {self.last_update_batch}; "
                "pass the global optimizer-step count, which only grows"
            )
        weight = self.average_period / batch
        for name, value in self._model_state(model).items():
            average = self._average[name]
            if average.is_floating_point():
                average.mul_(1.0 - weight).add_(value.detach().to("cpu", torch.float32), alpha=weight)
            else:
                average.copy_(value)
        self.last_update_batch = batch
        return True

    def averaged_state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the averaged state (CPU; fp32 for floating-point entries), loadable by the model."""
        return {name: value.clone() for name, value in self._average.items()}

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's weights and buffers with the average (cast to their dtype and device)."""
        model.load_state_dict(self._average)

    def _model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        state = model.state_dict()
        if state.keys() != self._average.keys():
            missing = sorted(self._average.keys() - state.keys())[:3]
            extra = sorted(state.keys() - self._average.keys())[:3]
            raise ValueError(
                f"the model's state keys differ from the averaged ones (missing {missing}, unexpected "
                f"{extra}); pass the same unwrapped model, e.g. accelerator.unwrap_model(model)"
            )
        return state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the average exactly."""
        return {
            "average_period": self.average_period,
            "last_update_batch": self.last_update_batch,
            "average": self.averaged_state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict["average"].keys() != self._average.keys():
            raise ValueError(
                "the saved average does not belong to this model (its state keys differ); build the "
                "ModelAverager from the same architecture before loading"
            )
        self.average_period = state_dict["average_period"]
        self.last_update_batch = state_dict["last_update_batch"]
        self._average = {name: _cpu_copy(value) for name, value in state_dict["average"].items()}


def _cpu_copy(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().to("cpu", copy=True)
    return value.float() if value.is_floating_point() else value
