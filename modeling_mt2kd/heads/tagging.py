"""Audio-tagging head: frame-wise class logits averaged over valid frames (multi-label)."""

import torch
import torch.nn.functional as F
from torch import nn


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
