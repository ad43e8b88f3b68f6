"""Eden: the learning-rate schedule of the paper (Zipformer's), driven by batch and epoch counts."""

from typing import Any

from torch.optim import Optimizer


class Eden:
    """Sets each param group's "lr" to its "base_lr" times

        ((batch² + lr_batches²) / lr_batches²) ** -0.25
        * ((epoch² + lr_epochs²) / lr_epochs²) ** -0.25
        * warmup,

    where `warmup` rises linearly from `warmup_start` at batch 0 to 1.0 at `warmup_batches` and stays
    there. Works with any torch optimizer (ScaledAdam, AdamW).

    A group's "base_lr" is its "lr" when the scheduler is created (so per-module learning-rate
    scales are kept); the schedule is applied at once, so the first batch already trains at the
    warm-up rate.

    Call `step_batch()` after every optimizer step and `step_epoch(epoch)` at the start of every
    epoch. Args:
        optimizer: the optimizer whose learning rates are set.
        lr_batches: batches after which the rate decays noticeably (paper: 7500).
        lr_epochs: epochs after which the rate decays noticeably (paper: 3.5).
        warmup_batches: length of the linear warm-up, in batches.
        warmup_start: warm-up factor at batch 0, in [0, 1].
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_batches: float = 7500,
        lr_epochs: float = 3.5,
        warmup_batches: float = 500,
        warmup_start: float = 0.5,
    ) -> None:
        if lr_batches <= 0 or lr_epochs <= 0:
            raise ValueError(f"lr_batches and lr_epochs must be > 0; got {lr_batches} and {lr_epochs}")
        if warmup_batches < 0:
            raise ValueError(f"warmup_batches must be >= 0; got {warmup_batches}")
        if not 0.0 <= warmup_start <= 1.0:
            raise ValueError(f"warmup_start must be in [0, 1]; got {warmup_start}")
        self.optimizer = optimizer
        self.lr_batches = lr_batches
        self.lr_epochs = lr_epochs
        self.warmup_batches = warmup_batches
        self.warmup_start = warmup_start
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.batch = 0
        self.epoch = 0
        self._apply()

    def factor(self, batch: float, epoch: float) -> float:
        """The multiplier of base_lr after `batch` optimizer steps in total and `epoch` completed epochs."""
        batch_decay = ((batch**2 + self.lr_batches**2) / self.lr_batches**2) ** -0.25
        epoch_decay = ((epoch**2 + self.lr_epochs**2) / self.lr_epochs**2) ** -0.25
        if batch >= self.warmup_batches:
            warmup = 1.0
        else:
            warmup = self.warmup_start + (1.0 - self.warmup_start) * batch / self.warmup_batches
        return batch_decay * epoch_decay * warmup

    def step_batch(self, batch: int | None = None) -> None:
        """Set the batch count: `batch` optimizer steps since the start of training (over all
        epochs), or one more than before when None."""
        self.batch = self.batch + 1 if batch is None else batch
        self._apply()

    def step_epoch(self, epoch: float | None = None) -> None:
        """Set the epoch count: `epoch` completed epochs (0 during the first), or one more when None."""
        self.epoch = self.epoch + 1 if epoch is None else epoch
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate of every param group, as last set."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def _apply(self) -> None:
        factor = self.factor(self.batch, self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor

    def state_dict(self) -> dict[str, Any]:
        """The batch and epoch counts; the settings come from the constructor and the base rates
        from the optimizer's own state dict."""
        return {"batch": self.batch, "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batch = state_dict["batch"]
        self.epoch = state_dict["epoch"]
        self._apply()
