"""Audio-tagging head: frame-wise class logits averaged over valid frames, and the clip losses
(multi-label BCE, or single-label cross-entropy)."""

import torch
import torch.nn.functional as F
from torch import nn

from configuration_mt2kd import IGNORE_INDEX

from .labels import check_label_ids


class TaggingHead(nn.Module):
    """(batch, frames, hidden) + mask (batch, frames) → clip logits (batch, num_labels)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        frame_logits = self.proj(self.dropout(hidden_states))
        weights = frame_mask.to(frame_logits.dtype).unsqueeze(-1)
        return (frame_logits * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def tagging_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-clip binary cross-entropy summed over classes (batch,); targets are multi-hot or
    soft probabilities (batch, num_labels)."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").sum(dim=-1)


def clip_classification_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str) -> torch.Tensor:
    """Per-clip loss (batch,) of clip logits (batch, num_labels) for the config's `problem_type`.

    "multi_label_classification": `tagging_loss` on targets (batch, num_labels).
    "single_label_classification": softmax cross-entropy on class indices (batch,); clips labelled
    -100 contribute 0.
    """
    if problem_type == "multi_label_classification":
        return tagging_loss(logits, labels)
    if problem_type == "single_label_classification":
        if labels.shape != logits.shape[:1] or labels.is_floating_point():
            raise ValueError(
                f"single_label_classification takes one class index per clip, labels of shape ({logits.shape[0]},) "
                f"and an integer dtype; got {tuple(labels.shape)} {labels.dtype}. For multi-hot targets use "
                f"problem_type='multi_label_classification'"
            )
        check_label_ids(labels, logits.shape[-1], size_name="num_labels")
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="none")
    raise ValueError(
        f"problem_type={problem_type!r} has no clip-classification loss; use 'multi_label_classification' or "
        f"'single_label_classification'"
    )
