"""Zipformer feed-forward module: Linear → SwooshL → dropout (shared over time) → Linear."""

import torch
from torch import nn

from ..initialization import with_initial_scale
from .activation_constraints import Balancer, Whiten, whitening_schedule
from .activations import swoosh_l
from .dropout import shared_dropout
from .schedules import Schedule


class FeedForwardModule(nn.Module):
    def __init__(self, embed_dim: int, feedforward_dim: int, dropout_rate: Schedule):
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, feedforward_dim)
        self.out_proj = with_initial_scale(nn.Linear(feedforward_dim, embed_dim), 0.1)
        self.dropout_rate = dropout_rate
        self.hidden_balancer = Balancer(channel_dim=-1, min_positive=0.3, max_positive=1.0, min_abs=0.75, max_abs=5.0)
        self.out_whiten = Whiten(1, whitening_schedule(7.5), prob=(0.025, 0.25), grad_scale=0.01)

    def forward(self, hidden_states: torch.Tensor, batch_count: float | None = None) -> torch.Tensor:
        """(batch, frames, embed_dim) → same shape."""
        hidden = swoosh_l(self.hidden_balancer(self.in_proj(hidden_states), batch_count))
        hidden = shared_dropout(hidden, self.dropout_rate(batch_count, self.training), shared_dim=1, training=self.training)
        return self.out_whiten(self.out_proj(hidden), batch_count)
