"""Depthwise convolutions over time on (batch, frames, channels) activations, and the chunk-causal
one that replaces the causal encoder's depthwise Conv1d."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def depthwise_conv_over_time(conv: nn.Conv1d, hidden_states: torch.Tensor, padding: int) -> torch.Tensor:
    """`conv` (a depthwise Conv1d, weight (channels, 1, kernel)) along the frames of `hidden_states`
    (batch, frames, channels), zero-padded by `padding` frames on both sides → (batch, frames', channels).

    Run as a depthwise conv2d on the (batch, channels, 1, frames) view of the input, which is
    channels-last in memory: oneDNN's channels-last depthwise kernel, an order of magnitude faster
    on CPU than Conv1d on a transposed (batch, channels, frames) view and bit-identical to it. The
    parameters stay the Conv1d's (same state_dict keys and shapes as the authors' checkpoints).
    Under torch.export (hence ONNX export) it is the plain Conv1d: the conv2d's memory-format choice
    guards on batch > 1, which would tie an exported graph to one side of that.
    """
    if torch.compiler.is_exporting():
        return F.conv1d(hidden_states.transpose(1, 2), conv.weight, conv.bias, padding=padding, groups=conv.groups).transpose(1, 2)
    convolved = F.conv2d(
        hidden_states.transpose(1, 2).unsqueeze(2), conv.weight.unsqueeze(2), conv.bias,
        padding=(0, padding), groups=conv.groups,
    )
    return convolved.squeeze(2).transpose(1, 2)


class ChunkCausalDepthwiseConv1d(nn.Module):
    """A depthwise convolution that never looks past the end of the current chunk.

    Sum of two depthwise convolutions: `causal_conv` (half the kernel, `kernel_size // 2` frames of
    left context, nothing on the right) and `chunkwise_conv` (the full kernel, run on each chunk
    alone with zero padding at the chunk edges) scaled per position by `1 + chunkwise_conv_scale`
    near the chunk's left and right edges. Parameter names follow the authors' checkpoints.
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"cnn_module_kernel must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.causal_conv = nn.Conv1d(channels, channels, kernel_size=(kernel_size + 1) // 2, groups=channels)
        self.chunkwise_conv = nn.Conv1d(
            channels, channels, kernel_size=kernel_size, padding=kernel_size // 2, groups=channels
        )
        # Row 0: corrections near a chunk's left edge; row 1: near its right edge (added to a scale of 1).
        self.chunkwise_conv_scale = nn.Parameter(torch.zeros(2, channels, kernel_size))

    @property
    def left_context(self) -> int:
        """Frames of left context the causal part reads (the streaming cache length)."""
        return self.kernel_size // 2

    def forward(self, values: torch.Tensor, chunk_size: int = -1) -> torch.Tensor:
        """values (batch, frames, channels) → same shape. Chunks of `chunk_size` frames start at frame 0;
        -1 (or a chunk longer than the input) makes the whole input one chunk."""
        batch_size, num_frames, channels = values.shape
        if chunk_size < 0 or chunk_size > num_frames:
            chunk_size = num_frames
        right_pad = -num_frames % chunk_size
        causal = depthwise_conv_over_time(self.causal_conv, F.pad(values, (0, 0, self.left_context, 0)), 0)
        num_chunks = (num_frames + right_pad) // chunk_size
        chunks = F.pad(values, (0, 0, 0, right_pad)).reshape(batch_size * num_chunks, chunk_size, channels)
        chunkwise = depthwise_conv_over_time(self.chunkwise_conv, chunks, self.kernel_size // 2)
        chunkwise = chunkwise * self.chunk_scale(chunk_size)
        chunkwise = chunkwise.reshape(batch_size, num_chunks * chunk_size, channels)[:, :num_frames]
        return chunkwise + causal

    def streaming_forward(self, values: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk: values (batch, chunk, channels) and the previous `left_context` input frames
        (batch, channels, left_context) → (output (batch, chunk, channels), new cache)."""
        extended = torch.cat([cache.transpose(1, 2), values], dim=1)
        causal = depthwise_conv_over_time(self.causal_conv, extended, 0)
        chunkwise = depthwise_conv_over_time(self.chunkwise_conv, values, self.kernel_size // 2)
        chunkwise = chunkwise * self.chunk_scale(values.shape[1])
        new_cache = extended[:, extended.shape[1] - self.left_context :].transpose(1, 2)
        return chunkwise + causal, new_cache

    def chunk_scale(self, chunk_size: int) -> torch.Tensor:
        """(chunk_size, channels) scale of the chunkwise convolution's output at each chunk position.

        The left-edge corrections start at the chunk's first frame and the right-edge ones end at its
        last; a chunk shorter than the kernel keeps the first / last `chunk_size` of each."""
        left_edge, right_edge = self.chunkwise_conv_scale[0], self.chunkwise_conv_scale[1]
        if chunk_size < self.kernel_size:
            left_edge = left_edge[:, :chunk_size]
            right_edge = right_edge[:, self.kernel_size - chunk_size :]
        else:
            extra = chunk_size - self.kernel_size
            left_edge = F.pad(left_edge, (0, extra))
            right_edge = F.pad(right_edge, (extra, 0))
        return (1.0 + (left_edge + right_edge)).transpose(0, 1)
