"""Zipformer2 encoder: fbank (100 Hz) → convolutional front end (50 Hz) → stacks at several frame
rates → combined channels → output downsampling (25 Hz)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import relative_position_table
from .chunk_masks import choose_chunking, chunk_attention_mask
from ..lengths import downsampled_lengths
from .resampling import SimpleDownsample
from .schedules import schedule
from .stack import Zipformer2Stack
from .subsampling import Conv2dSubsampling

FEATURE_MASK_PROB = 0.125


@dataclass
class EncoderResult:
    """last_hidden_state (batch, frames, output_dim) at 25 Hz with `lengths` (batch,);
    stack_outputs: the embedding then each stack's output, (batch, frames_50hz, dim_i) at 50 Hz."""

    last_hidden_state: torch.Tensor
    lengths: torch.Tensor
    stack_outputs: tuple[torch.Tensor, ...]


def convert_num_channels(hidden_states: torch.Tensor, num_channels: int) -> torch.Tensor:
    """Truncate or zero-pad the channel (last) dimension to `num_channels`."""
    extra = num_channels - hidden_states.shape[-1]
    if extra <= 0:
        return hidden_states[..., :num_channels]
    return torch.nn.functional.pad(hidden_states, (0, extra))


class Zipformer2Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config  # read at call time: the chunk settings of a causal encoder may be changed
        self.encoder_dim = config.encoder_dim
        self.encoder_unmasked_dim = config.encoder_unmasked_dim
        self.embed = Conv2dSubsampling(config.num_mel_bins, config.encoder_dim[0], config.subsampling_channels)
        dropout_rate = schedule(*config.dropout_schedule)
        num_stacks = config.num_stacks
        self.stacks = nn.ModuleList(
            Zipformer2Stack(
                num_layers=config.num_encoder_layers[i],
                downsampling_factor=config.downsampling_factor[i],
                pos_dim=config.pos_dim,
                layer_kwargs=dict(
                    embed_dim=config.encoder_dim[i],
                    pos_dim=config.pos_dim,
                    num_heads=config.num_attention_heads[i],
                    query_head_dim=config.query_head_dim[i],
                    pos_head_dim=config.pos_head_dim[i],
                    value_head_dim=config.value_head_dim[i],
                    feedforward_dim=config.feedforward_dim[i],
                    cnn_module_kernel=config.cnn_module_kernel[i],
                    causal=config.causal,
                ),
                dropout_rate=dropout_rate,
                warmup_begin=config.warmup_batches * (i + 1) / (num_stacks + 1),
                warmup_end=config.warmup_batches * (i + 2) / (num_stacks + 1),
                final_layerdrop_rate=0.035 * config.downsampling_factor[i] ** 0.5,
            )
            for i in range(num_stacks)
        )
        self.output_downsampling_factor = config.output_downsampling_factor
        self.output_downsample = SimpleDownsample(config.output_downsampling_factor)

    def forward(
        self, input_features: torch.Tensor, input_lengths: torch.Tensor | None = None, batch_count: float | None = None
    ) -> EncoderResult:
        """input_features (batch, frames, num_mel_bins) at 100 Hz with valid `input_lengths` (batch,);
        None means no padding: every frame is valid, and no padding mask is built or applied."""
        hidden_states, lengths = self.embed(input_features, input_lengths, batch_count)
        if input_lengths is None:
            lengths = None
        stack_outputs = [hidden_states]
        feature_masks = self._feature_masks(hidden_states)
        chunk_size, left_context_chunks = choose_chunking(self.config, self.training)
        attn_mask = chunk_attention_mask(hidden_states.shape[1], chunk_size, left_context_chunks, hidden_states.device)
        # One relative positional table per frame rate, shared by the stacks at that rate.
        pos_tables: dict[int, torch.Tensor] = {}
        for stack, dim, feature_mask in zip(self.stacks, self.encoder_dim, feature_masks):
            factor = stack.downsampling_factor
            if factor not in pos_tables:
                pos_tables[factor] = relative_position_table(
                    downsampled_lengths(hidden_states.shape[1], factor), self.config.pos_dim, hidden_states.device,
                    hidden_states.dtype,
                )
            hidden_states = stack(
                convert_num_channels(hidden_states, dim), lengths, feature_mask, batch_count, chunk_size, attn_mask,
                pos_tables[factor],
            )
            stack_outputs.append(hidden_states)
        combined = self._combine_stacks(stack_outputs[1:])
        output = self.output_downsample(combined, lengths)
        if lengths is None:
            output_lengths = torch.full((output.shape[0],), output.shape[1], device=output.device)
        else:
            output_lengths = downsampled_lengths(lengths, self.output_downsampling_factor)
        return EncoderResult(output, output_lengths, tuple(stack_outputs))

    def _combine_stacks(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """The last stack's channels, widened with the extra channels of earlier, wider stacks."""
        pieces, width = [outputs[-1]], self.encoder_dim[-1]
        for output, dim in zip(reversed(outputs[:-1]), reversed(self.encoder_dim[:-1])):
            if dim > width:
                pieces.append(output[..., width:dim])
                width = dim
        return torch.cat(pieces, dim=-1)

    def _feature_masks(self, hidden_states: torch.Tensor) -> list[torch.Tensor | float]:
        """Training only: per utterance, zero the channels above `encoder_unmasked_dim` (in two
        halves, each with probability 0.125) so narrow sub-networks learn to work alone."""
        if not self.training:
            return [1.0] * len(self.encoder_dim)
        batch_size, device, dtype = hidden_states.shape[0], hidden_states.device, hidden_states.dtype
        keep_first = (torch.rand(batch_size, 1, 1, device=device) > FEATURE_MASK_PROB).to(dtype)
        keep_second = keep_first * (torch.rand(batch_size, 1, 1, device=device) > FEATURE_MASK_PROB).to(dtype)
        masks = []
        for dim, unmasked in zip(self.encoder_dim, self.encoder_unmasked_dim):
            middle = unmasked + (dim - unmasked) // 2
            mask = torch.ones(batch_size, 1, dim, device=device, dtype=dtype)
            mask[..., unmasked:middle] = keep_first.expand(-1, -1, middle - unmasked)
            mask[..., middle:] = keep_second.expand(-1, -1, dim - middle)
            masks.append(mask)
        return masks
