"""The encoder's exact speed fixes (issue 14 item 4) compute what the plain formulas compute.

Each test compares a fast form against a straightforward reference written here (the formula the
fast form replaced), on tiny random inputs, including odd lengths, padding and gradients.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modeling_mt2kd.encoder.causal_convolution import ChunkCausalDepthwiseConv1d, depthwise_conv_over_time


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize(("channels", "frames", "kernel"), [(8, 1, 3), (16, 37, 31), (24, 64, 15)])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_depthwise_conv_over_time_equals_conv1d(channels, frames, kernel, batch_size):
    torch.manual_seed(0)
    conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
    hidden = torch.randn(batch_size, frames, channels, requires_grad=True)
    expected = conv(hidden.transpose(1, 2)).transpose(1, 2)
    actual = depthwise_conv_over_time(conv, hidden, kernel // 2)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= 1e-6
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), hidden)
    (actual_grad,) = torch.autograd.grad(actual.square().sum(), hidden)
    assert relative_error(actual_grad, expected_grad) <= 1e-6


def reference_chunk_causal(module: ChunkCausalDepthwiseConv1d, values: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """values (batch, frames, channels): the causal half-kernel over the left-padded input plus, chunk by
    chunk, the full kernel on the chunk alone times the chunk's edge scale, as plain Conv1d calls."""
    num_frames = values.shape[1]
    if chunk_size < 0 or chunk_size > num_frames:
        chunk_size = num_frames
    channels_first = values.transpose(1, 2)
    causal = module.causal_conv(F.pad(channels_first, (module.kernel_size // 2, 0)))
    pieces = []
    for start in range(0, num_frames, chunk_size):
        chunk = F.pad(channels_first[..., start : start + chunk_size], (0, max(0, start + chunk_size - num_frames)))
        scale = module.chunk_scale(chunk_size).transpose(0, 1)  # (channels, chunk_size)
        pieces.append(module.chunkwise_conv(chunk) * scale)
    chunkwise = torch.cat(pieces, dim=2)[..., :num_frames]
    return (chunkwise + causal).transpose(1, 2)


@pytest.mark.parametrize(("frames", "chunk_size"), [(23, 8), (24, 8), (5, 8), (17, -1), (9, 3)])
def test_chunk_causal_convolution_equals_chunk_by_chunk_reference(frames, chunk_size):
    torch.manual_seed(0)
    module = ChunkCausalDepthwiseConv1d(6, 7)
    nn.init.normal_(module.chunkwise_conv_scale, std=0.3)
    values = torch.randn(2, frames, 6)
    assert relative_error(module(values, chunk_size), reference_chunk_causal(module, values, chunk_size)) <= 1e-6


def test_chunk_causal_streaming_equals_full_forward_chunk_by_chunk():
    torch.manual_seed(0)
    module = ChunkCausalDepthwiseConv1d(6, 7)
    nn.init.normal_(module.chunkwise_conv_scale, std=0.3)
    values = torch.randn(2, 24, 6)
    cache = torch.zeros(2, 6, module.left_context)
    outputs = []
    for start in range(0, 24, 8):
        output, cache = module.streaming_forward(values[:, start : start + 8], cache)
        outputs.append(output)
    assert cache.shape == (2, 6, module.left_context)
    assert relative_error(torch.cat(outputs, dim=1), module(values, 8)) <= 1e-6
