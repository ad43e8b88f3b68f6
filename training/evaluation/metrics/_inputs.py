"""Checking and converting the score and label arrays that the metrics take (numpy or torch)."""

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]


def as_scores(values: ArrayLike, name: str, ndim: int) -> np.ndarray:
    """float64 array of exactly `ndim` dims with finite values."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dim(s); got shape {array.shape}")
    if not np.isfinite(array).all():
        num_bad = np.count_nonzero(~np.isfinite(array))
        raise ValueError(f"{name} contains {num_bad} NaN or infinite values; remove or fix them")
    return array


def as_binary_labels(values: ArrayLike, name: str, ndim: int) -> np.ndarray:
    """bool array of exactly `ndim` dims from 0/1 (or bool) values."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dim(s); got shape {array.shape}")
    if array.dtype != np.bool_:
        unexpected = np.setdiff1d(np.unique(array), [0, 1])
        if unexpected.size:
            raise ValueError(
                f"{name} must hold only 0 and 1 (or booleans); got values such as {unexpected[:5].tolist()}"
            )
    return array.astype(bool)
