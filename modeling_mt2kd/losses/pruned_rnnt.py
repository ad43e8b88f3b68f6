"""Pruned RNN-T loss (k2's algorithm, as icefall trains transducers) in plain PyTorch.

A cheap "simple" loss on additive encoder/predictor projections (B, T, V) + (B, S+1, V) finds,
for each frame, which `prune_range` symbol positions carry the alignment; the full joiner then
runs only on those, (B, T, prune_range, V) instead of (B, T, S+1, V).

Lattice layout (k2's, used by every function here): `px` (B, S, T+1) holds the log-probability
of emitting symbol s at frame t (column T is -inf: a path must end with a blank), `py`
(B, S+1, T) the log-probability of a blank at (s, t). `boundary` (B, 4) int64 has rows
`[0, 0, num_symbols, num_frames]`. Losses are computed in float32.
"""

from typing import NamedTuple

import torch
from torch import nn

_REDUCTIONS = ("none", "mean", "sum")


def _log_add(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """log(exp(a) + exp(b)) with -inf + -inf = -inf and zero (not NaN) gradients there."""
    shift = torch.maximum(first, second).detach()
    shift = shift.masked_fill(shift == -torch.inf, 0.0)
    total = torch.exp(first - shift) + torch.exp(second - shift)
    reachable = total > 0
    return torch.where(reachable, shift + torch.log(torch.where(reachable, total, 1.0)), -torch.inf)


def _skew(lattice: torch.Tensor) -> torch.Tensor:
    """(B, R, C) -> (B, R+C-1, R) with out[b, n, r] = lattice[b, r, n - r] (-inf where n - r is outside [0, C))."""
    batch, rows, columns = lattice.shape
    diagonals = torch.arange(rows + columns - 1, device=lattice.device)
    column_index = diagonals[None, :] - torch.arange(rows, device=lattice.device)[:, None]  # (R, R+C-1)
    inside = (column_index >= 0) & (column_index < columns)
    if columns == 0:
        return lattice.new_full((batch, max(rows - 1, 0), rows), -torch.inf)
    gathered = lattice.gather(2, column_index.clamp(0, columns - 1).expand(batch, -1, -1))
    return gathered.masked_fill(~inside, -torch.inf).transpose(1, 2)


def _lattice_log_likelihood(px: torch.Tensor, py: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """(B,) total log-probability of all paths from (0, 0) to (num_symbols, num_frames).

    The forward recursion alpha[s, t] = log_add(alpha[s-1, t] + px[s-1, t], alpha[s, t-1] + py[s, t-1])
    runs one anti-diagonal (s + t = n) at a time, vectorised over the batch and the symbols.
    """
    batch, num_symbols, _ = px.shape
    num_frames = py.shape[2]
    symbol_steps, blank_steps = _skew(px), _skew(py)  # (B, S+T, S), (B, S+T, S+1)
    no_path = px.new_full((batch, 1), -torch.inf)
    alpha = torch.cat([px.new_zeros(batch, 1), no_path.expand(batch, num_symbols)], dim=1)  # (B, S+1)
    diagonals = [alpha]
    for step in range(num_symbols + num_frames):
        by_blank = alpha + blank_steps[:, step]
        by_symbol = torch.cat([no_path, alpha[:, :-1] + symbol_steps[:, step]], dim=1)
        alpha = _log_add(by_blank, by_symbol)
        diagonals.append(alpha)
    end_symbol, end_frame = boundary[:, 2], boundary[:, 3]
    return torch.stack(diagonals, dim=1)[torch.arange(batch, device=px.device), end_symbol + end_frame, end_symbol]


def _check_boundary(boundary: torch.Tensor, batch: int, num_symbols: int, num_frames: int) -> None:
    if boundary.shape != (batch, 4):
        raise ValueError(f"expected boundary of shape ({batch}, 4); got {tuple(boundary.shape)}")
    if bool((boundary[:, :2] != 0).any()):
        raise ValueError(
            f"boundary rows must start with [0, 0, ...] (no offsets are supported); got {boundary.tolist()}"
        )
    if bool((boundary[:, 2] > num_symbols).any()) or bool((boundary[:, 3] > num_frames).any()):
        raise ValueError(
            f"boundary lengths exceed the padded sizes ({num_symbols} symbols, {num_frames} frames); "
            f"got {boundary.tolist()}"
        )


def _close_lattice(px: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """(B, S, T) -> (B, S, T+1), with -inf from each utterance's last frame on (no symbol after the end)."""
    px = torch.cat([px, px.new_full((*px.shape[:2], 1), -torch.inf)], dim=2)
    past_end = torch.arange(px.shape[2], device=px.device)[None, :] >= boundary[:, 3:4]  # (B, T+1)
    return px.masked_fill(past_end[:, None, :], -torch.inf)


def _reduce(loss: torch.Tensor, reduction: str, zero_infinity: bool) -> torch.Tensor:
    if zero_infinity:
        loss = torch.where(torch.isinf(loss), torch.zeros_like(loss), loss)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def rnnt_loss_smoothed(
    am: torch.Tensor,
    lm: torch.Tensor,
    symbols: torch.Tensor,
    termination_symbol: int,
    boundary: torch.Tensor,
    *,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    reduction: str = "mean",
    zero_infinity: bool = False,
    return_grad: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The "simple" RNN-T loss of logits am[t] + lm[s], smoothed with LM-only and AM-only terms.

    With both scales 0 it is the RNN-T loss of logits[b, t, s, v] = am[b, t, v] + lm[b, s, v]
    (normalised over v), computed without forming that (B, T, S+1, V) tensor. The LM-only term
    normalises lm alone; the AM-only term pairs am with the batch's unigram of softmax(lm).
    Note the argument order (am, lm), unlike k2's (lm, am).

    Args:
        am: (B, T, V) encoder projection.
        lm: (B, S+1, V) predictor projection (position 0 is the start context).
        symbols: (B, S) target ids; padding must still be valid ids.
        termination_symbol: the blank id.
        boundary: (B, 4) rows [0, 0, num_symbols, num_frames].
        lm_only_scale, am_only_scale: interpolation weights of the two smoothing terms.
        reduction: "none" (B,), "mean" over utterances, or "sum".
        zero_infinity: replace infinite per-utterance losses (no valid path) by 0.
        return_grad: also return the occupation probabilities used for pruning, taken by
            autograd of the total log-likelihood w.r.t. px (B, S, T+1) and py (B, S+1, T).

    Returns:
        The loss, or `(loss, (px_grad, py_grad))` when `return_grad`.
    """
    # Over 60 lines on purpose: a third is the docstring; the rest is one formula (k2's smoothed simple loss) whose
    # terms share the normalisers, kept together so it reads against k2's rnnt_loss_smoothed.
    _check_reduction(reduction)
    if lm_only_scale < 0 or am_only_scale < 0 or lm_only_scale + am_only_scale >= 1:
        raise ValueError(
            "expected non-negative lm_only_scale and am_only_scale summing below 1; "
            f"got {lm_only_scale}, {am_only_scale}"
        )
    batch, num_frames, vocab = am.shape
    num_symbols = symbols.shape[1]
    if lm.shape != (batch, num_symbols + 1, vocab):
        raise ValueError(
            f"expected lm of shape {(batch, num_symbols + 1, vocab)} to match am and symbols; got {tuple(lm.shape)}"
        )
    _check_boundary(boundary, batch, num_symbols, num_frames)
    am, lm = am.float(), lm.float()

    # log sum_v exp(am[t, v] + lm[s, v]) as a matrix product of shifted exponentials: (B, S+1, T).
    am_shift, lm_shift = am.amax(dim=2, keepdim=True).detach(), lm.amax(dim=2, keepdim=True).detach()
    joint_sum = torch.matmul(torch.exp(lm - lm_shift), torch.exp(am - am_shift).transpose(1, 2))
    log_normaliser = torch.log(joint_sum + torch.finfo(joint_sum.dtype).tiny) + lm_shift + am_shift.transpose(1, 2)

    px_am = am.gather(2, symbols[:, None, :].expand(batch, num_frames, num_symbols)).transpose(1, 2)  # (B, S, T)
    px_lm = lm[:, :num_symbols].gather(2, symbols[:, :, None])  # (B, S, 1)
    py_am = am[:, None, :, termination_symbol]  # (B, 1, T)
    py_lm = lm[:, :, termination_symbol, None]  # (B, S+1, 1)
    joint_scale = 1.0 - lm_only_scale - am_only_scale
    px = joint_scale * (px_am + px_lm - log_normaliser[:, :num_symbols])
    py = joint_scale * (py_am + py_lm - log_normaliser)

    if lm_only_scale > 0:
        lm_log_normaliser = lm.logsumexp(dim=2, keepdim=True)  # (B, S+1, 1)
        px = px + lm_only_scale * (px_lm - lm_log_normaliser[:, :num_symbols])
        py = py + lm_only_scale * (py_lm - lm_log_normaliser)
    if am_only_scale > 0:
        # Unigram of the predictor's distributions over the valid positions of the batch.
        valid = torch.arange(num_symbols + 1, device=lm.device)[None, :] <= boundary[:, 2:3]  # (B, S+1)
        unigram = (lm.softmax(dim=2) * valid[..., None]).sum(dim=(0, 1)) / valid.sum()
        log_unigram = torch.log(unigram + torch.finfo(unigram.dtype).tiny)  # (V,)
        am_log_normaliser = (am + log_unigram).logsumexp(dim=2)[:, None, :]  # (B, 1, T)
        px = px + am_only_scale * (px_am + log_unigram[symbols][:, :, None] - am_log_normaliser)
        py = py + am_only_scale * (py_am + log_unigram[termination_symbol] - am_log_normaliser)
    px = _close_lattice(px, boundary)

    tracks_grad = px.requires_grad or py.requires_grad
    if return_grad:  # autograd needs a graph from px, py even when the inputs carry none
        px = px if px.requires_grad else px.detach().requires_grad_()
        py = py if py.requires_grad else py.detach().requires_grad_()
    with torch.set_grad_enabled(torch.is_grad_enabled() or return_grad):
        log_likelihood = _lattice_log_likelihood(px, py, boundary)
        if return_grad:
            occupations = torch.autograd.grad(log_likelihood.sum(), (px, py), retain_graph=tracks_grad)
    loss = _reduce(-log_likelihood if tracks_grad else -log_likelihood.detach(), reduction, zero_infinity)
    return (loss, occupations) if return_grad else loss


def get_rnnt_prune_ranges(
    px_grad: torch.Tensor, py_grad: torch.Tensor, boundary: torch.Tensor, s_range: int
) -> torch.Tensor:
    """Choose, per frame, `s_range` consecutive symbol positions that hold most of the alignment.

    Args:
        px_grad: (B, S, T+1) symbol occupation from `rnnt_loss_smoothed(..., return_grad=True)`.
        py_grad: (B, S+1, T) blank occupation.
        boundary: (B, 4) rows [0, 0, num_symbols, num_frames].
        s_range: positions kept per frame (at least 2); values above S keep every position.

    Returns:
        (B, T, min(s_range, S+1)) int64 ranges[b, t] = start[b, t] + [0, 1, ...], where the start
        is non-decreasing in t, 0 at t = 0, grows by at most s_range - 1 per frame and reaches
        num_symbols on the last valid frame, so at least one full path survives.
    """
    batch, num_symbols, _ = px_grad.shape
    num_frames = py_grad.shape[2]
    if s_range < 2:
        raise ValueError(f"s_range must be at least 2 for the regular RNN-T topology; got {s_range}")
    if py_grad.shape != (batch, num_symbols + 1, num_frames):
        raise ValueError(
            f"expected py_grad of shape {(batch, num_symbols + 1, num_frames)}; got {tuple(py_grad.shape)}"
        )
    _check_boundary(boundary, batch, num_symbols, num_frames)
    s_range = min(s_range, num_symbols + 1)
    num_windows = num_symbols + 2 - s_range  # window starts 0 .. S + 1 - s_range

    # Score a window by the blank occupation inside it minus the paths that enter it from below
    # by a symbol in this frame (those spent part of the frame outside the window).
    blank_cumsum = torch.nn.functional.pad(py_grad.cumsum(dim=1), (0, 0, 1, 0))  # (B, S+2, T)
    inside = blank_cumsum[:, s_range:] - blank_cumsum[:, :num_windows]  # (B, W, T)
    entering = torch.nn.functional.pad(px_grad[:, : num_windows - 1, :num_frames], (0, 0, 1, 0))  # (B, W, T)
    start = (inside - entering).argmax(dim=1)  # (B, T)

    frames = torch.arange(num_frames, device=start.device)[None, :]
    final_start = (boundary[:, 2:3] - s_range + 1).clamp(min=0)
    start = torch.where(frames >= boundary[:, 3:4] - 1, final_start, start)
    # Non-decreasing: no later frame may start below an earlier one (suffix minimum).
    start = start.flip(1).cummin(dim=1).values.flip(1)
    # At most s_range - 1 new symbols per frame: raise starts to max_{t' >= t} start[t'] - (s_range - 1)(t' - t).
    slope = (s_range - 1) * frames
    start = (start - slope).flip(1).cummax(dim=1).values.flip(1) + slope
    # Reachable from symbol 0 at frame 0.
    start = torch.minimum(start, slope)
    return start[:, :, None] + torch.arange(s_range, device=start.device)


def do_rnnt_pruning(
    am: torch.Tensor, lm: torch.Tensor, ranges: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, J) and (B, S+1, J) joiner inputs -> both (B, T, s_range, J), lm taken at `ranges` (B, T, s_range)."""
    batch, num_frames, s_range = ranges.shape
    pruned_lm = lm[torch.arange(batch, device=lm.device)[:, None, None], ranges]
    return am[:, :, None, :].expand(batch, num_frames, s_range, am.shape[2]), pruned_lm


def rnnt_loss_pruned(
    logits: torch.Tensor,
    symbols: torch.Tensor,
    ranges: torch.Tensor,
    termination_symbol: int,
    boundary: torch.Tensor,
    *,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> torch.Tensor:
    """RNN-T loss over the pruned lattice: positions outside `ranges` are impossible.

    Args:
        logits: (B, T, s_range, V) joiner output on `do_rnnt_pruning`'s inputs.
        symbols: (B, S) target ids; padding must still be valid ids.
        ranges: (B, T, s_range) from `get_rnnt_prune_ranges`.
        termination_symbol: the blank id.
        boundary: (B, 4) rows [0, 0, num_symbols, num_frames].
        reduction: "none" (B,), "mean" over utterances, or "sum".
        zero_infinity: replace infinite per-utterance losses (no path inside the ranges) by 0.
    """
    _check_reduction(reduction)
    batch, num_frames, s_range, _ = logits.shape
    num_symbols = symbols.shape[1]
    if ranges.shape != (batch, num_frames, s_range):
        raise ValueError(
            f"expected ranges of shape {(batch, num_frames, s_range)} to match logits; got {tuple(ranges.shape)}"
        )
    _check_boundary(boundary, batch, num_symbols, num_frames)
    logits = logits.float()
    log_normaliser = logits.logsumexp(dim=3)  # (B, T, s_range)
    padded_symbols = torch.nn.functional.pad(symbols, (0, 1), value=termination_symbol)  # (B, S+1)
    next_symbols = padded_symbols[torch.arange(batch, device=symbols.device)[:, None, None], ranges]
    px_pruned = logits.gather(3, next_symbols[..., None]).squeeze(3) - log_normaliser
    py_pruned = logits[..., termination_symbol] - log_normaliser

    # Scatter the pruned entries into full (B, T, S+1) lattices whose other entries are impossible.
    impossible = logits.new_full((batch, num_frames, num_symbols + 1), -torch.inf)
    px = impossible.scatter(2, ranges, px_pruned)[:, :, :num_symbols].transpose(1, 2)  # (B, S, T)
    py = impossible.scatter(2, ranges, py_pruned).transpose(1, 2)  # (B, S+1, T)
    loss = -_lattice_log_likelihood(_close_lattice(px, boundary), py, boundary)
    return _reduce(loss, reduction, zero_infinity)


class PrunedTransducerLoss(NamedTuple):
    """`loss` = simple_loss_scale * simple_loss + pruned_loss_scale * pruned_loss."""

    loss: torch.Tensor
    simple_loss: torch.Tensor
    pruned_loss: torch.Tensor


def pruned_transducer_loss(
    encoder_out: torch.Tensor,
    decoder_out: torch.Tensor,
    joiner: nn.Module,
    simple_am_proj: nn.Module,
    simple_lm_proj: nn.Module,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    encoder_lengths: torch.Tensor,
    blank_id: int = 0,
    prune_range: int = 5,
    am_scale: float = 0.0,
    lm_scale: float = 0.25,
    simple_loss_scale: float = 0.5,
    pruned_loss_scale: float = 1.0,
    reduction: str = "sum",
    zero_infinity: bool = False,
) -> PrunedTransducerLoss:
    """The simple and pruned transducer losses of icefall's `AsrModel.forward_transducer`.

    Args:
        encoder_out: (B, T, encoder_dim) encoder output.
        decoder_out: (B, S+1, decoder_dim) predictor output on the targets with a leading blank.
        joiner: `joiner(am, lm, project_input=False)` with `encoder_proj` and `decoder_proj`.
        simple_am_proj, simple_lm_proj: Linear layers to the vocabulary for the simple loss.
        targets: (B, S) target ids; positions past `target_lengths` may hold any value.
        target_lengths: (B,) number of targets per utterance.
        encoder_lengths: (B,) number of valid encoder frames.
        blank_id: the blank id.
        prune_range: symbol positions kept per frame.
        am_scale, lm_scale: AM-only and LM-only smoothing of the simple loss.
        simple_loss_scale, pruned_loss_scale: weights of the two losses in `loss` (icefall's
            training loop ramps them during warm-up; pass the current values).
        reduction: "sum" (icefall), "mean" over utterances, or "none".
        zero_infinity: replace infinite per-utterance losses by 0.
    """
    # Over 60 lines on purpose: the argument list and docstring are half of it; the body is icefall's sequence
    # simple loss -> prune ranges -> pruned joiner loss, in that order.
    batch, num_symbols = targets.shape
    if target_lengths.shape != (batch,) or encoder_lengths.shape != (batch,):
        raise ValueError(
            f"expected target_lengths and encoder_lengths of shape ({batch},); got "
            f"{tuple(target_lengths.shape)} and {tuple(encoder_lengths.shape)}"
        )
    padding = torch.arange(num_symbols, device=targets.device)[None, :] >= target_lengths[:, None]
    symbols = targets.long().masked_fill(padding, blank_id)
    boundary = torch.zeros(batch, 4, dtype=torch.long, device=targets.device)
    boundary[:, 2], boundary[:, 3] = target_lengths, encoder_lengths

    with torch.autocast(device_type=encoder_out.device.type, enabled=False):
        simple_loss, (px_grad, py_grad) = rnnt_loss_smoothed(
            simple_am_proj(encoder_out).float(),
            simple_lm_proj(decoder_out).float(),
            symbols,
            blank_id,
            boundary,
            lm_only_scale=lm_scale,
            am_only_scale=am_scale,
            reduction=reduction,
            zero_infinity=zero_infinity,
            return_grad=True,
        )
        ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, prune_range)
    # The joiner's own projections run before pruning, on (B, T, J) and (B, S+1, J) only.
    pruned_am, pruned_lm = do_rnnt_pruning(joiner.encoder_proj(encoder_out), joiner.decoder_proj(decoder_out), ranges)
    logits = joiner(pruned_am, pruned_lm, project_input=False)  # (B, T, prune_range, V)
    with torch.autocast(device_type=encoder_out.device.type, enabled=False):
        pruned_loss = rnnt_loss_pruned(
            logits.float(), symbols, ranges, blank_id, boundary, reduction=reduction, zero_infinity=zero_infinity
        )
    return PrunedTransducerLoss(
        loss=simple_loss_scale * simple_loss + pruned_loss_scale * pruned_loss,
        simple_loss=simple_loss,
        pruned_loss=pruned_loss,
    )
