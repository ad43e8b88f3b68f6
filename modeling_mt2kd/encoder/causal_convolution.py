"""Chunk-causal depthwise convolution: the causal encoder's replacement for the depthwise Conv1d."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
        """values (batch, channels, frames) → same shape. Chunks of `chunk_size` frames start at frame 0;
        -1 (or a chunk longer than the input) makes the whole input one chunk."""
        batch_size, channels, num_frames = values.shape
        if chunk_size < 0 or chunk_size > num_frames:
            chunk_size = num_frames
        right_pad = -num_frames % chunk_size
        causal = self.causal_conv(F.pad(values, (self.left_context, 0)))
        num_chunks = (num_frames + right_pad) // chunk_size
        chunks = F.pad(values, (0, right_pad)).reshape(batch_size, channels, num_chunks, chunk_size)
        chunks = chunks.transpose(1, 2).reshape(batch_size * num_chunks, channels, chunk_size)
        chunkwise = self.chunkwise_conv(chunks) * self.chunk_scale(chunk_size)
        chunkwise = chunkwise.reshape(batch_size, num_chunks, channels, chunk_size).transpose(1, 2)
        chunkwise = chunkwise.reshape(batch_size, channels, num_chunks * chunk_size)[..., :num_frames]
        return chunkwise + causal

    def streaming_forward(self, values: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk: values (batch, channels, chunk) and the previous `left_context` input frames
        (batch, channels, left_context) → (output (batch, channels, chunk), new cache)."""
        extended = torch.cat([cache, values], dim=2)
        causal = self.causal_conv(extended)
        chunkwise = self.chunkwise_conv(values) * self.chunk_scale(values.shape[2])
        return chunkwise + causal, extended[..., extended.shape[2] - self.left_context :]

    def chunk_scale(self, chunk_size: int) -> torch.Tensor:
        """(channels, chunk_size) scale of the chunkwise convolution's output at each chunk position.

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
        return 1.0 + (left_edge + right_edge)
