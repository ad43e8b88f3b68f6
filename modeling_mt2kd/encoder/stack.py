"""A Zipformer2 stack: layers at their own frame rate, between a downsample and an upsample."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import relative_position_table
from .bypass import BypassModule
from .layer import Zipformer2Layer
from ..lengths import downsampled_lengths
from .resampling import SimpleDownsample, padding_mask, upsample
from .schedules import Schedule, schedule

POS_EMB_DROPOUT = 0.15


class Zipformer2Stack(nn.Module):
    """Layers of one width run at 50 Hz / `downsampling_factor`.

    Input and output are (batch, frames, embed_dim) at 50 Hz. A downsampled stack combines its
    upsampled result with its input through a learnt bypass (`out_combiner`).
    """

    def __init__(
        self,
        num_layers: int,
        downsampling_factor: int,
        pos_dim: int,
        layer_kwargs: dict,
        dropout_rate: Schedule,
        warmup_begin: float,
        warmup_end: float,
        final_layerdrop_rate: float,
    ):
        super().__init__()
        self.downsampling_factor = downsampling_factor
        self.pos_dim = pos_dim
        # Layer j's whole-layer skip rate anneals from 0.5 over its own slice of the warm-up.
        step = (warmup_end - warmup_begin) / num_layers
        self.layers = nn.ModuleList(
            Zipformer2Layer(
                **layer_kwargs,
                dropout_rate=dropout_rate,
                bypass_skip_rate=schedule(
                    (warmup_begin + j * step, 0.5), (warmup_begin + (j + 1) * step, final_layerdrop_rate)
                ),
            )
            for j in range(num_layers)
        )
        if downsampling_factor > 1:
            self.downsample = SimpleDownsample(downsampling_factor)
            self.out_combiner = BypassModule(layer_kwargs["embed_dim"])
        else:
            self.downsample = None
            self.out_combiner = None

    def forward(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor | None,
        feature_mask: torch.Tensor | float = 1.0,
        batch_count: float | None = None,
        chunk_size: int = -1,
        attn_mask: torch.Tensor | None = None,
        pos_emb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states (batch, frames, embed_dim) at 50 Hz with valid `lengths` (batch,) (None: no
        padding, so no masking); feature_mask broadcastable to (batch, 1, embed_dim) (training only).
        Causal encoders only: chunk_size in 50 Hz frames (-1 = none) and the 50 Hz chunk attention
        mask (frames, frames). pos_emb: this stack's relative positional table (2·frames' - 1, pos_dim)
        at its own rate, when the caller shares one between stacks (None: computed here)."""
        stack_input = hidden_states
        factor = self.downsampling_factor
        if chunk_size > 0:
            chunk_size = chunk_size // factor
        if attn_mask is not None:
            attn_mask = attn_mask[::factor, ::factor]
        if self.downsample is not None:
            hidden_states = self.downsample(hidden_states, lengths)
            if lengths is not None:
                lengths = downsampled_lengths(lengths, self.downsampling_factor)
        num_frames = hidden_states.shape[1]
        key_padding_mask = None if lengths is None else padding_mask(lengths, num_frames)
        if pos_emb is None:
            pos_emb = relative_position_table(num_frames, self.pos_dim, hidden_states.device, hidden_states.dtype)
        pos_emb = F.dropout(pos_emb, POS_EMB_DROPOUT, training=self.training)

        # In eval the mask is the Python float 1.0: skip the multiplications (a full copy each) there.
        masking = not (isinstance(feature_mask, float) and feature_mask == 1.0)
        if masking:
            hidden_states = hidden_states * feature_mask
        for layer in self.layers:
            hidden_states = layer(hidden_states, pos_emb, key_padding_mask, batch_count, chunk_size, attn_mask)
            if masking:
                hidden_states = hidden_states * feature_mask

        if self.downsample is None:
            return hidden_states
        hidden_states = upsample(hidden_states, self.downsampling_factor, stack_input.shape[1])
        return self.out_combiner(stack_input, hidden_states, batch_count, output_is_scratch=True)
