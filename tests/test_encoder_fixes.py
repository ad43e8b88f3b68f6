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


# --- Swoosh: in-place form in eager inference, the plain expression with autograd -----------------------

from configuration_mt2kd import MT2KDConfig  # noqa: E402
from modeling_mt2kd import MT2KDModel  # noqa: E402
from modeling_mt2kd.encoder.activations import swoosh_l, swoosh_r  # noqa: E402
from modeling_mt2kd.encoder.attention import compact_relative_positions, relative_position_table  # noqa: E402
from modeling_mt2kd.encoder.bypass import BypassModule  # noqa: E402
from modeling_mt2kd.encoder.resampling import SimpleDownsample, upsample  # noqa: E402

SWOOSH_REFERENCES = [
    (swoosh_l, lambda x: F.softplus(x - 4.0) - 0.08 * x - 0.035, 4.0),
    (swoosh_r, lambda x: F.softplus(x - 1.0) - 0.08 * x - 0.313261687, 1.0),
]


@pytest.mark.parametrize(("swoosh", "reference", "shift"), SWOOSH_REFERENCES)
def test_swoosh_inference_form_is_bit_identical_and_leaves_input_alone(swoosh, reference, shift):
    x = torch.randn(3, 17, 40) * 8  # beyond softplus's threshold (20) too
    x[0, 0, :3] = torch.tensor([30.0, -30.0, 0.0])
    original = x.clone()
    with torch.no_grad():
        assert torch.equal(swoosh(x), reference(x))
    with torch.inference_mode():
        assert torch.equal(swoosh(x), reference(x))
    assert torch.equal(x, original)
    assert swoosh(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize(("swoosh", "reference", "shift"), SWOOSH_REFERENCES)
def test_swoosh_training_values_and_gradients_unchanged(swoosh, reference, shift):
    x = (torch.randn(2, 11, 9) * 6).requires_grad_()
    values = swoosh(x)
    assert torch.equal(values, reference(x))
    (gradient,) = torch.autograd.grad(values.sum(), x)
    torch.testing.assert_close(gradient, torch.sigmoid(x.detach() - shift) - 0.08, rtol=0, atol=1e-6)


# --- Resampling: reshape-based, against the gather formulation -------------------------------------------


def reference_downsample(module: SimpleDownsample, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Frames past each utterance's end (and the tail) replaced by its last valid frame via gather."""
    batch_size, num_frames, channels = hidden.shape
    out_frames = -(-num_frames // module.factor)
    positions = torch.arange(out_frames * module.factor)
    source = torch.minimum(positions.unsqueeze(0), (lengths - 1).clamp(min=0).unsqueeze(1))
    padded = hidden.gather(1, source.unsqueeze(-1).expand(-1, -1, channels))
    weights = module.bias.softmax(dim=0)
    return (padded.reshape(batch_size, out_frames, module.factor, channels) * weights[:, None]).sum(dim=2)


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("num_frames", [1, 7, 8, 13])
def test_downsample_equals_gather_reference(factor, num_frames):
    torch.manual_seed(0)
    module = SimpleDownsample(factor)
    nn.init.normal_(module.bias)
    hidden = torch.randn(3, num_frames, 5)
    lengths = torch.tensor([num_frames, max(1, num_frames - 3), max(1, num_frames // 2)])
    assert torch.equal(module(hidden, lengths), reference_downsample(module, hidden, lengths))
    full = torch.full((3,), num_frames)
    assert torch.equal(module(hidden, None), reference_downsample(module, hidden, full))


@pytest.mark.parametrize(("frames", "factor", "num_frames"), [(4, 2, 7), (4, 2, 8), (3, 4, 9), (1, 3, 2)])
def test_upsample_repeats_each_frame(frames, factor, num_frames):
    hidden = torch.randn(2, frames, 3)
    expected = hidden.repeat_interleave(factor, dim=1)[:, :num_frames]
    assert torch.equal(upsample(hidden, factor, num_frames), expected)


# --- Positional table cache, in-place bypass --------------------------------------------------------------


def test_stacks_at_one_rate_share_one_positional_table(monkeypatch):
    from modeling_mt2kd.encoder import zipformer

    model = MT2KDModel(MT2KDConfig.from_preset("mt2kd-tiny")).eval()  # factors (1, 2, 4, 2)
    calls = []

    def recording_table(num_frames, pos_dim, device, dtype):
        calls.append(num_frames)
        return relative_position_table(num_frames, pos_dim, device, dtype)

    monkeypatch.setattr(zipformer, "relative_position_table", recording_table)
    with torch.no_grad():
        model(torch.randn(1, 57, 80))
    assert calls == [25, 13, 7]  # 50 Hz frames (57 - 7) // 2 = 25, then ceil(25 / 2), ceil(25 / 4)
    table = relative_position_table(11, 16, torch.device("cpu"), torch.bfloat16)
    assert torch.equal(table, compact_relative_positions(11, 16, torch.device("cpu")).bfloat16())


def test_bypass_in_place_equals_out_of_place():
    module = BypassModule(6).eval()
    nn.init.uniform_(module.bypass_scale)
    module_input, module_output = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    with torch.no_grad():
        expected = module(module_input, module_output)
        assert torch.equal(module(module_input, module_output.clone(), output_is_scratch=True), expected)
    assert torch.equal(module(module_input, module_output, output_is_scratch=True).detach(), expected)


# --- Whole encoder: the inference shortcuts change nothing ----------------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["full-context", "causal"])
def tiny_model(request) -> MT2KDModel:
    torch.manual_seed(0)
    overrides = {"causal": True, "chunk_size": 8, "left_context_frames": 16} if request.param else {}
    model = MT2KDModel(MT2KDConfig.from_preset("mt2kd-tiny", **overrides)).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # non-trivial values everywhere (biases, scales, edge corrections)
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def test_unmasked_forward_equals_all_ones_mask_and_padded_batch(tiny_model):
    torch.manual_seed(1)
    features = torch.randn(2, 93, 80)
    with torch.no_grad():
        unmasked = tiny_model(features).last_hidden_state
        all_ones = tiny_model(features, attention_mask=torch.ones(2, 93, dtype=torch.long)).last_hidden_state
        padded_features = torch.cat([features, torch.randn(2, 20, 80)], dim=1)
        mask = torch.zeros(2, 113, dtype=torch.long)
        mask[:, :93] = 1
        padded = tiny_model(padded_features, attention_mask=mask)
    assert torch.equal(unmasked, all_ones)
    valid = padded.attention_mask[0].bool()
    assert int(valid.sum()) == unmasked.shape[1]
    torch.testing.assert_close(padded.last_hidden_state[:, valid], unmasked, rtol=1e-5, atol=1e-5)


def test_inference_shortcuts_equal_the_autograd_path(tiny_model):
    torch.manual_seed(2)
    features = torch.randn(2, 77, 80)
    mask = torch.ones(2, 77, dtype=torch.long)
    mask[1, 60:] = 0
    with torch.inference_mode():
        fast = tiny_model(features, attention_mask=mask)
        fast_unmasked = tiny_model(features).last_hidden_state
    plain = tiny_model(features, attention_mask=mask)  # grad enabled: no in-place forms
    plain_unmasked = tiny_model(features).last_hidden_state
    assert plain.last_hidden_state.requires_grad
    assert torch.equal(fast.last_hidden_state, plain.last_hidden_state.detach())
    assert torch.equal(fast_unmasked, plain_unmasked.detach())


def test_upsample_of_one_frame_is_a_fresh_writable_tensor():
    upsampled = upsample(torch.randn(2, 1, 3), 4, 3)
    upsampled.add_(1.0)  # an overlapping (expanded) view would refuse this
    assert upsampled.shape == (2, 3, 3)
