"""One Zipformer2 layer: two feed-forward/attention/convolution passes sharing attention weights."""

from __future__ import annotations

import random

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .activation_constraints import Balancer, Whiten, whitening_schedule
from .attention import NonlinAttention, RelPositionAttentionWeights, SelfAttention
from .bias_norm import BiasNorm
from .bypass import BypassModule
from .convolution import ConvolutionModule
from .dropout import sequence_dropout_mask
from .feed_forward import FeedForwardModule
from .inference import eager_inference
from .schedules import Schedule, schedule


class Zipformer2Layer(GradientCheckpointingLayer):
    """ff1 → non-linear attention → self-attention → conv → ff2 → mid bypass → self-attention →
    conv → ff3 → BiasNorm → bypass. Shapes (batch, frames, embed_dim) in and out.

    In training, whole modules are skipped per utterance at the scheduled rates; in eval every
    module runs and every rate is 0. With gradient checkpointing the layer's activations are
    recomputed in the backward pass, replaying its random numbers (see `..checkpointing`).
    """

    def __init__(
        self,
        embed_dim: int,
        pos_dim: int,
        num_heads: int,
        query_head_dim: int,
        pos_head_dim: int,
        value_head_dim: int,
        feedforward_dim: int,
        cnn_module_kernel: int,
        dropout_rate: Schedule,
        bypass_skip_rate: Schedule,
        causal: bool = False,
    ):
        super().__init__()
        self.self_attn_weights = RelPositionAttentionWeights(embed_dim, pos_dim, num_heads, query_head_dim, pos_head_dim)
        self.self_attn1 = SelfAttention(embed_dim, num_heads, value_head_dim)
        self.self_attn2 = SelfAttention(embed_dim, num_heads, value_head_dim)
        self.feed_forward1 = FeedForwardModule(embed_dim, (feedforward_dim * 3) // 4, dropout_rate)
        self.feed_forward2 = FeedForwardModule(embed_dim, feedforward_dim, dropout_rate)
        self.feed_forward3 = FeedForwardModule(embed_dim, (feedforward_dim * 5) // 4, dropout_rate)
        self.nonlin_attention = NonlinAttention(embed_dim, hidden_channels=3 * embed_dim // 4)
        self.conv_module1 = ConvolutionModule(embed_dim, cnn_module_kernel, causal)
        self.conv_module2 = ConvolutionModule(embed_dim, cnn_module_kernel, causal)
        self.norm = BiasNorm(embed_dim)
        self.bypass = BypassModule(embed_dim, skip_rate=bypass_skip_rate)
        self.bypass_mid = BypassModule(embed_dim)
        # Present in the authors' layer (and checkpoints) but never used by its forward pass; kept
        # frozen so checkpoints load and parameter counts match.
        self.bypass_scale = nn.Parameter(torch.full((embed_dim,), 0.5), requires_grad=False)

        self.attention_skip_rate = schedule((0.0, 0.2), (4000.0, 0.05), (16000.0, 0.0))
        self.conv_skip_rate = schedule((0.0, 0.2), (4000.0, 0.05), (16000.0, 0.0))
        self.const_attention_rate = schedule((0.0, 0.25), (4000.0, 0.025))
        self.ff2_skip_rate = schedule((0.0, 0.1), (4000.0, 0.01), (50000.0, 0.0))
        self.ff3_skip_rate = schedule((0.0, 0.1), (4000.0, 0.01), (50000.0, 0.0))

        self.balancer_na = Balancer(
            channel_dim=-1, min_positive=0.3, max_positive=0.7, min_abs=schedule((0.0, 0.004), (4000.0, 0.02)),
            prob=0.05,
        )
        self.balancer_ff2 = Balancer(
            channel_dim=-1, min_positive=0.3, max_positive=0.7,
            min_abs=schedule((0.0, 0.0), (4000.0, 0.1), default=0.0), max_abs=2.0, prob=0.05,
        )
        self.balancer_ff3 = Balancer(
            channel_dim=-1, min_positive=0.3, max_positive=0.7,
            min_abs=schedule((0.0, 0.0), (4000.0, 0.2), default=0.0), max_abs=4.0, prob=0.05,
        )
        self.balancer1 = Balancer(channel_dim=-1, min_positive=0.45, max_positive=0.55, min_abs=0.2, max_abs=4.0)
        self.balancer2 = Balancer(channel_dim=-1, min_positive=0.45, max_positive=0.55, min_abs=0.1, max_abs=4.0)
        self.whiten = Whiten(1, whitening_schedule(4.0, ratio=3.0), prob=(0.025, 0.25), grad_scale=0.01)

    def forward(
        self,
        hidden_states: torch.Tensor,
        pos_emb: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        batch_count: float | None = None,
        chunk_size: int = -1,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states (batch, frames, embed_dim); pos_emb (2·frames - 1, pos_dim);
        key_padding_mask (batch, frames), True on padding. Causal layers only: chunk_size (frames at
        this layer's rate, -1 = none) for the convolutions, attn_mask (frames, frames) True where
        attention is not allowed."""
        # Over 60 lines on purpose: the authors' Zipformer2Layer module order read top to bottom (parity with
        # icefall's checkpoints depends on it); the nested helpers share this call's schedules and masks.
        training = self.training

        def rate(rate_schedule: Schedule) -> float:
            return rate_schedule(batch_count, training)

        def skippable(module_output: torch.Tensor, skip_rate: float) -> torch.Tensor:
            keep = sequence_dropout_mask(module_output, skip_rate, training)
            return module_output if keep is None else module_output * keep

        # In eager inference the residual sums after the first accumulate in place (this layer's own
        # tensor; nothing saved it for backward): bit-identical, one new tensor fewer per branch.
        in_place = not training and eager_inference()

        def add(hidden: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
            return hidden.add_(branch) if in_place else hidden + branch

        layer_input = hidden_states
        attn_weights = self.self_attn_weights(hidden_states, pos_emb, key_padding_mask, batch_count, attn_mask)
        hidden_states = hidden_states + self.feed_forward1(hidden_states, batch_count)  # never in place: the input

        attention_keep = sequence_dropout_mask(hidden_states, rate(self.attention_skip_rate), training)

        def attention_branch(module_output: torch.Tensor) -> torch.Tensor:
            return module_output if attention_keep is None else module_output * attention_keep

        first_head_weights = attn_weights[:, 0:1]
        if training and random.random() < rate(self.const_attention_rate):
            # Replace the weights by a uniform average over the keys they attend to.
            attended = (first_head_weights > 0.0).to(first_head_weights.dtype)
            first_head_weights = attended / attended.sum(dim=-1, keepdim=True)
        nonlin = self.balancer_na(self.nonlin_attention(hidden_states, first_head_weights, batch_count), batch_count)
        hidden_states = add(hidden_states, attention_branch(nonlin))
        hidden_states = add(hidden_states, attention_branch(self.self_attn1(hidden_states, attn_weights, batch_count)))
        hidden_states = add(hidden_states, skippable(
            self.conv_module1(hidden_states, key_padding_mask, batch_count, chunk_size), rate(self.conv_skip_rate)
        ))
        hidden_states = add(hidden_states, skippable(
            self.balancer_ff2(self.feed_forward2(hidden_states, batch_count), batch_count), rate(self.ff2_skip_rate)
        ))
        hidden_states = self.bypass_mid(layer_input, hidden_states, batch_count, output_is_scratch=True)

        hidden_states = add(hidden_states, attention_branch(self.self_attn2(hidden_states, attn_weights, batch_count)))
        hidden_states = add(hidden_states, skippable(
            self.conv_module2(hidden_states, key_padding_mask, batch_count, chunk_size), rate(self.conv_skip_rate)
        ))
        hidden_states = add(hidden_states, skippable(
            self.balancer_ff3(self.feed_forward3(hidden_states, batch_count), batch_count), rate(self.ff3_skip_rate)
        ))
        hidden_states = self.norm(self.balancer1(hidden_states, batch_count))
        hidden_states = self.bypass(layer_input, hidden_states, batch_count, output_is_scratch=True)
        return self.whiten(self.balancer2(hidden_states, batch_count), batch_count)
