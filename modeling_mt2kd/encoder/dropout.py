"""Dropout variants of the Zipformer recipe whose mask is shared along one dimension."""

import torch


def shared_dropout(hidden_states: torch.Tensor, p: float, shared_dim: int, training: bool) -> torch.Tensor:
    """Dropout with one mask value for every position along `shared_dim` (e.g. all frames)."""
    if not training or p == 0.0:
        return hidden_states
    mask_shape = list(hidden_states.shape)
    mask_shape[shared_dim] = 1
    keep = torch.rand(mask_shape, device=hidden_states.device) > p
    return hidden_states * keep.to(hidden_states.dtype) / (1.0 - p)


def sequence_dropout_mask(
    hidden_states: torch.Tensor, p: float, training: bool
) -> torch.Tensor | None:
    """A (batch, 1, 1) 0/1 mask that drops whole utterances with probability p, or None."""
    if not training or p == 0.0:
        return None
    batch_size = hidden_states.shape[0]
    keep = torch.rand(batch_size, 1, 1, device=hidden_states.device) > p
    return keep.to(hidden_states.dtype)
