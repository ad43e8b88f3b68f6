"""Pruned RNN-T loss: agreement with torchaudio's full RNN-T loss, pruning ranges, memory."""

import pytest
import torch
import torchaudio.functional as audio_functional
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from modeling_mt2kd.losses import (
    do_rnnt_pruning,
    get_rnnt_prune_ranges,
    pruned_transducer_loss,
    rnnt_loss_pruned,
    rnnt_loss_smoothed,
)

BLANK = 0
FRAME_LENGTHS = torch.tensor([9, 6, 4, 1])
SYMBOL_LENGTHS = torch.tensor([5, 3, 0, 1])


def _batch(vocab: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """am (4, 9, V), lm (4, 6, V), symbols (4, 5) with blank padding, boundary (4, 4); varied lengths."""
    generator = torch.Generator().manual_seed(seed)
    batch, frames, symbols = len(FRAME_LENGTHS), int(FRAME_LENGTHS.max()), int(SYMBOL_LENGTHS.max())
    am = torch.randn(batch, frames, vocab, generator=generator).requires_grad_()
    lm = torch.randn(batch, symbols + 1, vocab, generator=generator).requires_grad_()
    targets = torch.randint(1, vocab, (batch, symbols), generator=generator)
    targets = targets.masked_fill(torch.arange(symbols)[None, :] >= SYMBOL_LENGTHS[:, None], BLANK)
    boundary = torch.stack([torch.zeros_like(FRAME_LENGTHS)] * 2 + [SYMBOL_LENGTHS, FRAME_LENGTHS], dim=1)
    return am, lm, targets, boundary


def _torchaudio_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    return audio_functional.rnnt_loss(
        logits, targets.int(), FRAME_LENGTHS.int(), SYMBOL_LENGTHS.int(), blank=BLANK, reduction=reduction
    )


def test_simple_loss_is_the_rnnt_loss_of_summed_logits():
    am, lm, targets, boundary = _batch()
    loss = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, lm_only_scale=0.0, am_only_scale=0.0, reduction="none")
    expected = _torchaudio_loss(am[:, :, None, :] + lm[:, None, :, :], targets)
    torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-5)

    got_grads = torch.autograd.grad(loss.sum(), (am, lm))
    expected_grads = torch.autograd.grad(expected.sum(), (am, lm))
    for got, want in zip(got_grads, expected_grads):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("lm_only_scale, am_only_scale", [(0.0, 0.0), (0.25, 0.0), (0.1, 0.1)])
def test_smoothed_loss_ignores_constant_shifts_of_am_and_lm_rows(lm_only_scale, am_only_scale):
    am, lm, targets, boundary = _batch()
    shifted_am = am + torch.randn(am.shape[:2])[..., None] * 5
    shifted_lm = lm + torch.randn(lm.shape[:2])[..., None] * 5
    kwargs = dict(lm_only_scale=lm_only_scale, am_only_scale=am_only_scale, reduction="none")
    torch.testing.assert_close(
        rnnt_loss_smoothed(shifted_am, shifted_lm, targets, BLANK, boundary, **kwargs),
        rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, **kwargs),
        atol=1e-4,
        rtol=1e-5,
    )


def test_smoothed_loss_occupations_sum_to_one_blank_per_valid_frame():
    am, lm, targets, boundary = _batch()
    _, (px_grad, py_grad) = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, return_grad=True)
    valid_frames = torch.arange(am.shape[1])[None, :] < FRAME_LENGTHS[:, None]
    torch.testing.assert_close(py_grad.sum(dim=1), valid_frames.float(), atol=1e-5, rtol=0)
    # Each utterance emits each of its symbols exactly once.
    torch.testing.assert_close(px_grad.sum(dim=(1, 2)), SYMBOL_LENGTHS.float(), atol=1e-5, rtol=0)


def test_smoothed_loss_returns_occupations_without_a_graph_under_no_grad():
    am, lm, targets, boundary = _batch()
    with torch.no_grad():
        loss, (px_grad, py_grad) = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, return_grad=True)
    assert not loss.requires_grad
    assert px_grad.shape == (4, 5, 10) and py_grad.shape == (4, 6, 9)


def test_smoothed_loss_gradients_are_finite_with_padding_and_empty_targets():
    am, lm, targets, boundary = _batch()
    loss = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, lm_only_scale=0.25, am_only_scale=0.1)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(am.grad).all() and torch.isfinite(lm.grad).all()


@pytest.mark.parametrize("s_range", [2, 3, 4])
def test_prune_ranges_are_monotone_reachable_and_end_on_the_last_symbol(s_range):
    am, lm, targets, boundary = _batch(seed=s_range)
    _, (px_grad, py_grad) = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, return_grad=True)
    ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)

    assert ranges.shape == (4, 9, s_range)
    start = ranges[:, :, 0]
    assert (ranges == start[..., None] + torch.arange(s_range)).all()
    assert (start[:, 0] == 0).all()
    steps = start[:, 1:] - start[:, :-1]
    assert ((steps >= 0) & (steps <= s_range - 1)).all()
    for utterance, (num_symbols, num_frames) in enumerate(zip(SYMBOL_LENGTHS.tolist(), FRAME_LENGTHS.tolist())):
        assert num_symbols in ranges[utterance, num_frames - 1].tolist()


def test_pruning_follows_a_confident_alignment_and_keeps_its_probability():
    # Symbol k + 1 is emitted at frame 3k + 1, blanks elsewhere; the predictor is uninformative.
    frames, symbols = 12, 4
    am = torch.zeros(1, frames, 6)
    am[0, :, BLANK] = 8.0
    for k in range(symbols):
        am[0, 3 * k + 1, BLANK], am[0, 3 * k + 1, k + 1] = 0.0, 8.0
    lm = torch.zeros(1, symbols + 1, 6)
    targets, boundary = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[0, 0, symbols, frames]])
    _, (px_grad, py_grad) = rnnt_loss_smoothed(
        am, lm, targets, BLANK, boundary, lm_only_scale=0.0, am_only_scale=0.0, return_grad=True
    )
    ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range=2)

    assert ranges[0, :, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    pruned_am, pruned_lm = do_rnnt_pruning(am, lm, ranges)
    pruned = rnnt_loss_pruned(pruned_am + pruned_lm, targets, ranges, BLANK, boundary)
    full = audio_functional.rnnt_loss(
        am[:, :, None, :] + lm[:, None, :, :], targets.int(), torch.tensor([frames]).int(),
        torch.tensor([symbols]).int(), blank=BLANK,
    )
    assert pruned >= full
    torch.testing.assert_close(pruned, full, atol=1e-2, rtol=0)


def test_prune_ranges_wider_than_the_targets_keep_every_position():
    am, lm, targets, boundary = _batch()
    _, (px_grad, py_grad) = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, return_grad=True)
    ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range=50)
    assert (ranges == torch.arange(6)).all()


def test_pruned_loss_with_every_position_kept_matches_torchaudio():
    _, _, targets, boundary = _batch()
    logits = torch.randn(4, 9, 6, 7, requires_grad=True)
    ranges = torch.arange(6).expand(4, 9, 6)
    pruned_logits = logits[torch.arange(4)[:, None, None], torch.arange(9)[None, :, None], ranges]

    loss = rnnt_loss_pruned(pruned_logits, targets, ranges, BLANK, boundary, reduction="none")
    expected = _torchaudio_loss(logits, targets)
    torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-5)
    (got_grad,) = torch.autograd.grad(loss.sum(), logits)
    (expected_grad,) = torch.autograd.grad(expected.sum(), logits)
    torch.testing.assert_close(got_grad, expected_grad, atol=1e-4, rtol=1e-4)


def test_pruned_loss_is_infinite_without_a_path_unless_zero_infinity():
    # Two frames, a prune range of 2 (one new symbol per frame) and three symbols: no path survives.
    logits = torch.randn(1, 2, 2, 5, requires_grad=True)
    targets = torch.tensor([[1, 2, 3]])
    ranges = torch.tensor([[[0, 1], [1, 2]]])
    boundary = torch.tensor([[0, 0, 3, 2]])
    assert torch.isinf(rnnt_loss_pruned(logits, targets, ranges, BLANK, boundary))
    loss = rnnt_loss_pruned(logits, targets, ranges, BLANK, boundary, zero_infinity=True)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_combine_the_per_utterance_losses(reduction):
    am, lm, targets, boundary = _batch()
    per_utterance = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, reduction="none")
    reduced = rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, reduction=reduction)
    torch.testing.assert_close(reduced, getattr(per_utterance, reduction)())


def test_unknown_reduction_is_rejected_with_the_choices():
    am, lm, targets, boundary = _batch()
    with pytest.raises(ValueError, match="reduction must be one of"):
        rnnt_loss_smoothed(am, lm, targets, BLANK, boundary, reduction="avg")


def test_boundary_longer_than_the_padding_is_rejected():
    am, lm, targets, boundary = _batch()
    boundary[0, 3] = 99
    with pytest.raises(ValueError, match="exceed the padded sizes"):
        rnnt_loss_smoothed(am, lm, targets, BLANK, boundary)


class _Joiner(nn.Module):
    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab: int):
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab)

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True) -> torch.Tensor:
        if project_input:
            encoder_out, decoder_out = self.encoder_proj(encoder_out), self.decoder_proj(decoder_out)
        return self.output_linear(torch.tanh(encoder_out + decoder_out))


def _transducer_batch(vocab: int, seed: int = 0):
    torch.manual_seed(seed)
    encoder_dim, decoder_dim = 12, 10
    joiner = _Joiner(encoder_dim, decoder_dim, 16, vocab)
    am_proj, lm_proj = nn.Linear(encoder_dim, vocab), nn.Linear(decoder_dim, vocab)
    encoder_out = torch.randn(4, 9, encoder_dim, requires_grad=True)
    decoder_out = torch.randn(4, 6, decoder_dim, requires_grad=True)
    targets = torch.randint(1, vocab, (4, 5)).masked_fill(torch.arange(5) >= SYMBOL_LENGTHS[:, None], -1)
    return joiner, am_proj, lm_proj, encoder_out, decoder_out, targets


def test_transducer_loss_without_pruning_matches_torchaudio_on_the_full_joiner():
    joiner, am_proj, lm_proj, encoder_out, decoder_out, targets = _transducer_batch(vocab=7)
    losses = pruned_transducer_loss(
        encoder_out, decoder_out, joiner, am_proj, lm_proj, targets, SYMBOL_LENGTHS, FRAME_LENGTHS, prune_range=10
    )
    full_logits = joiner(encoder_out[:, :, None, :], decoder_out[:, None, :, :])
    expected = _torchaudio_loss(full_logits, targets.clamp(min=0), reduction="sum")
    torch.testing.assert_close(losses.pruned_loss, expected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(losses.loss, 0.5 * losses.simple_loss + losses.pruned_loss)

    losses.loss.backward()
    parameters = [*joiner.parameters(), *am_proj.parameters(), *lm_proj.parameters(), encoder_out, decoder_out]
    assert all(torch.isfinite(parameter.grad).all() for parameter in parameters)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operator produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.numel = max(self.numel, tensor.numel())
        return out


def test_pruned_transducer_loss_never_materialises_the_full_lattice():
    vocab, prune_range = 500, 3
    joiner, am_proj, lm_proj, encoder_out, decoder_out, targets = _transducer_batch(vocab=vocab)
    batch, frames, symbols_plus_one = 4, 9, 6
    with _LargestTensor() as largest:
        losses = pruned_transducer_loss(
            encoder_out, decoder_out, joiner, am_proj, lm_proj, targets, SYMBOL_LENGTHS, FRAME_LENGTHS,
            prune_range=prune_range,
        )
        losses.loss.backward()
    assert largest.numel == batch * frames * prune_range * vocab  # the pruned logits (B, T, prune_range, V)
    assert largest.numel < batch * frames * symbols_plus_one * vocab
