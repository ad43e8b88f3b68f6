"""Zipformer attention: relative-position attention weights shared by two value passes and by the
non-linear attention module."""

from __future__ import annotations

import math
import random

import torch
from torch import nn

from ..initialization import with_initial_scale
from .activation_constraints import Balancer, Whiten, penalize_large_values, whitening_schedule
from .schedules import Schedule, schedule

MASKED_SCORE = -1000.0  # icefall's fill value for masked keys; exp() of it is exactly 0 in fp32


def compact_relative_positions(num_frames: int, pos_dim: int, device: torch.device) -> torch.Tensor:
    """Compact relative positional encoding for offsets -(T-1) … (T-1): (2T - 1, pos_dim).

    Offsets are log-compressed then squashed by atan, so far offsets share nearly the same code;
    the last channel is a constant 1 that acts as a bias.
    """
    offsets = torch.arange(-(num_frames - 1), num_frames, device=device, dtype=torch.float32).unsqueeze(1)
    freqs = 1 + torch.arange(pos_dim // 2, device=device)
    compression = pos_dim**0.5
    compressed = compression * offsets.sign() * ((offsets.abs() + compression).log() - math.log(compression))
    angles = (compressed / (pos_dim / (2.0 * math.pi))).atan()
    # Channels cos, sin, cos, sin, … then the constant 1 in the last channel, built without in-place
    # slice writes (a captured graph would guard those on the table having two or more rows).
    interleaved = torch.stack([(angles * freqs).cos(), (angles * freqs).sin()], dim=-1).flatten(1)
    bias_channel = torch.ones_like(interleaved[:, :1])
    return torch.cat([interleaved[:, : pos_dim - 1], bias_channel], dim=1)


def relative_position_table(num_frames: int, pos_dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`compact_relative_positions` in `dtype`: (2·num_frames - 1, pos_dim)."""
    return compact_relative_positions(num_frames, pos_dim, device).to(dtype)


class RelPositionAttentionWeights(nn.Module):
    """Multi-head attention weights with query·key and query·position scores.

    Returns (batch, heads, frames, frames); masked keys get weight 0. Scores are not divided by
    sqrt(head_dim): the input projection's scale plays that role.
    """

    def __init__(self, embed_dim: int, pos_dim: int, num_heads: int, query_head_dim: int, pos_head_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.query_head_dim = query_head_dim
        self.pos_head_dim = pos_head_dim
        self.in_proj = with_initial_scale(
            nn.Linear(embed_dim, (2 * query_head_dim + pos_head_dim) * num_heads), query_head_dim**-0.25
        )
        self.linear_pos = with_initial_scale(nn.Linear(pos_dim, num_heads * pos_head_dim, bias=False), 0.05)
        self.pos_emb_skip_rate: Schedule = schedule((0.0, 0.5), (4000.0, 0.0))
        self.balance_keys = Balancer(
            channel_dim=-1, min_positive=0.4, max_positive=0.6, min_abs=0.0, max_abs=100.0, prob=0.025
        )
        self.whiten_keys = Whiten(num_heads, whitening_schedule(3.0), prob=(0.025, 0.25), grad_scale=0.025)

    def forward(
        self,
        hidden_states: torch.Tensor,
        pos_emb: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        batch_count: float | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states (batch, frames, embed_dim), pos_emb (2·frames - 1, pos_dim),
        key_padding_mask (batch, frames) True on padding; attn_mask (frames, frames) True where a
        query may not attend to a key (the causal encoder's chunk mask)."""
        batch_size, num_frames, _ = hidden_states.shape
        heads, query_dim = self.num_heads, self.query_head_dim * self.num_heads
        projected = self.in_proj(hidden_states)
        query = projected[..., :query_dim].reshape(batch_size, num_frames, heads, -1).transpose(1, 2)
        key = self.whiten_keys(self.balance_keys(projected[..., query_dim : 2 * query_dim], batch_count), batch_count)
        key = key.reshape(batch_size, num_frames, heads, -1)
        # (heads, batch · frames, pos_head_dim): one matmul per head, with no broadcast over the batch
        # (a broadcast batch of 1 is a special case a captured graph would have to guard on).
        pos_query = projected[..., 2 * query_dim :].reshape(batch_size * num_frames, heads, -1).transpose(0, 1)
        scores = torch.matmul(query, key.permute(0, 2, 3, 1))  # (batch, heads, frames, frames)

        pos_keys = self.linear_pos(pos_emb).reshape(-1, heads, self.pos_head_dim).permute(1, 2, 0)
        # A zero key before the first offset makes rows 2·frames long, so that `_relative_to_absolute`
        # is views and narrows (no as_strided: graph capture and ONNX need plain view ops).
        pos_keys = torch.nn.functional.pad(pos_keys, (1, 0))
        pos_scores = torch.bmm(pos_query, pos_keys).reshape(heads * batch_size, num_frames, 2 * num_frames)
        if self.training and random.random() < self.pos_emb_skip_rate(batch_count, self.training):
            # Skipped by zeroing rather than not computing, so every parameter stays in the graph
            # (DistributedDataParallel requires it).
            pos_scores = pos_scores * 0.0
        pos_scores = _relative_to_absolute(pos_scores).unflatten(0, (heads, batch_size))
        scores = scores + pos_scores.transpose(0, 1)

        if self.training and random.random() < 0.1:
            scores = penalize_large_values(scores, limit=25.0, penalty=1e-4)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask, MASKED_SCORE)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], MASKED_SCORE)
        return scores.softmax(dim=-1)


def _relative_to_absolute(pos_scores: torch.Tensor) -> torch.Tensor:
    """(N, T, 2T) scores by offset, column 0 unused and column k for offset k - T → (N, T, T) with
    out[i, j] = pos_scores[i, T - i + j], the score of offset j - i.

    Read as (2T, T) rows, minus the first, and again as (T, 2T - 1) rows, element (i, j) is flat
    element T + i·(2T - 1) + j = i·2T + (T - i + j) of the input: row i, column T - i + j.
    """
    num_rows, num_frames, row_length = pos_scores.shape
    rows = pos_scores.reshape(num_rows, row_length, num_frames).narrow(1, 1, row_length - 1)
    return rows.reshape(num_rows, num_frames, row_length - 1).narrow(2, 0, num_frames)


class SelfAttention(nn.Module):
    """Values projected per head, mixed by precomputed attention weights, projected back."""

    def __init__(self, embed_dim: int, num_heads: int, value_head_dim: int):
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, num_heads * value_head_dim)
        self.out_proj = with_initial_scale(nn.Linear(num_heads * value_head_dim, embed_dim), 0.05)
        self.whiten = Whiten(1, whitening_schedule(7.5, ratio=3.0), prob=(0.025, 0.25), grad_scale=0.01)

    def forward(
        self, hidden_states: torch.Tensor, attn_weights: torch.Tensor, batch_count: float | None = None
    ) -> torch.Tensor:
        """hidden_states (batch, frames, embed_dim), attn_weights (batch, heads, frames, frames)."""
        batch_size, num_frames, _ = hidden_states.shape
        heads = attn_weights.shape[1]
        values = self.in_proj(hidden_states).reshape(batch_size, num_frames, heads, -1).transpose(1, 2)
        mixed = torch.matmul(attn_weights, values).transpose(1, 2).reshape(batch_size, num_frames, -1)
        return self.whiten(self.out_proj(mixed), batch_count)


class NonlinAttention(nn.Module):
    """Gated attention over a tanh-gated projection, using the first head's attention weights."""

    def __init__(self, channels: int, hidden_channels: int):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.in_proj = nn.Linear(channels, 3 * hidden_channels)
        self.out_proj = with_initial_scale(nn.Linear(hidden_channels, channels), 0.05)
        self.gate_balancer = Balancer(
            channel_dim=-1, min_positive=schedule((0.0, 0.25), (20000.0, 0.05)),
            max_positive=schedule((0.0, 0.75), (20000.0, 0.95)), min_abs=0.5, max_abs=5.0,
        )
        self.whiten_values = Whiten(1, whitening_schedule(5.0), prob=(0.025, 0.25), grad_scale=0.01)
        self.whiten_output = Whiten(1, whitening_schedule(5.0, ratio=3.0), prob=(0.025, 0.25), grad_scale=0.01)

    def forward(
        self, hidden_states: torch.Tensor, attn_weights: torch.Tensor, batch_count: float | None = None
    ) -> torch.Tensor:
        """hidden_states (batch, frames, channels), attn_weights (batch, 1, frames, frames)."""
        gate, values, out_gate = self.in_proj(hidden_states).chunk(3, dim=-1)
        values = self.whiten_values(values, batch_count) * torch.tanh(self.gate_balancer(gate, batch_count))
        mixed = torch.bmm(attn_weights[:, 0], values)  # bmm: matmul's broadcast would guard on batch == 1
        return self.whiten_output(self.out_proj(mixed * out_gate), batch_count)
