"""Label batches of the ASR and classification losses: padding with `IGNORE_INDEX`, and the check
that every other id is a class the head has."""

from __future__ import annotations

import torch

from configuration_mt2kd import IGNORE_INDEX

MAX_REPORTED_IDS = 8


def label_lengths(labels: torch.Tensor) -> torch.Tensor:
    """Tokens per row of (batch, max_tokens) labels padded with `IGNORE_INDEX`."""
    return (labels != IGNORE_INDEX).sum(dim=-1)


def check_label_ids(labels: torch.Tensor, num_classes: int, size_name: str = "vocab_size") -> None:
    """Raise a ValueError naming the bad ids when `labels` hold ids outside [0, num_classes) other
    than `IGNORE_INDEX`: an embedding or loss would otherwise fail obscurely or train on garbage.

    Reading the values is a host sync, so the losses call this only when labels are given, and it is
    skipped while torch.compile traces (the inference forwards never reach it).
    """
    if torch.compiler.is_compiling():
        return
    valid = (labels == IGNORE_INDEX) | ((labels >= 0) & (labels < num_classes))
    if bool(valid.all()):
        return
    bad_ids = labels[~valid].unique().tolist()
    shown = ", ".join(str(i) for i in bad_ids[:MAX_REPORTED_IDS]) + (", ..." if len(bad_ids) > MAX_REPORTED_IDS else "")
    raise ValueError(
        f"labels must be ids in [0, {size_name}={num_classes}) or {IGNORE_INDEX} (padding, ignored); got {shown}. "
        f"The labels and the model disagree: encode them with the tokenizer (or label map) the model was built "
        f"for, or build the model with config.{size_name} covering every id"
    )
