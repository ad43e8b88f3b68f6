"""Zipformer feed-forward module: Linear → SwooshL → dropout (shared over time) → Linear."""

import torch
from torch import nn

from ..initialization import with_initial_scale
from .activations import swoosh_l
from .dropout import shared_dropout
from .schedules import Schedule


class FeedForwardModule(nn.Module):
    def __init__(self, embed_dim: int, feedforward_dim: int, dropout_rate: Schedule):
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, feedforward_dim)
        self.out_proj = with_initial_scale(nn.Linear(feedforward_dim, embed_dim), 0.1)
        self.dropout_rate = dropout_rate

    def forward(self, hidden_states: torch.Tensor, batch_count: float | None = None) -> torch.Tensor:
        """(batch, frames, embed_dim) → same shape."""
        hidden = swoosh_l(self.in_proj(hidden_states))
        hidden = shared_dropout(hidden, self.dropout_rate(batch_count, self.training), shared_dim=1, training=self.training)
        return self.out_proj(hidden)
