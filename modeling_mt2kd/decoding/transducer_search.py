"""Batched greedy and modified beam search for a stateless transducer (predictor + joiner).

Both searches follow icefall's conventions: the predictor sees the last `context_size` tokens,
padded on the left with -1 (a zero embedding) and one blank; the encoder output is projected by
the joiner once, before the frame loop; utterances of different lengths share one batch.
"""

import math
from typing import Protocol

import torch
from torch import nn

from .decoded_sequence import DecodedSequence, check_frame_lengths


class TransducerPredictor(Protocol):
    """Stateless predictor: (N, U) token ids -> (N, U', decoder_dim); with need_pad=False U' = U - context_size + 1."""

    context_size: int
    blank_id: int

    def __call__(self, tokens: torch.Tensor, need_pad: bool = True) -> torch.Tensor: ...


class TransducerJoiner(Protocol):
    """Joiner: logits (..., vocab) from encoder and predictor outputs, projected unless project_input=False."""

    encoder_proj: nn.Module
    decoder_proj: nn.Module

    def __call__(
        self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True
    ) -> torch.Tensor: ...


def _check_search_inputs(encoder_out: torch.Tensor, encoder_lengths: torch.Tensor) -> None:
    if encoder_out.ndim != 3:
        raise ValueError(f"expected encoder_out of shape (batch, frames, channels); got {tuple(encoder_out.shape)}")
    check_frame_lengths(encoder_lengths, encoder_out.shape[0], encoder_out.shape[1])


def _start_context(predictor: TransducerPredictor) -> tuple[int, ...]:
    """The predictor context before any token: -1 (zero embedding) padding, then one blank."""
    return (-1,) * (predictor.context_size - 1) + (predictor.blank_id,)


def _project_predictor(
    predictor: TransducerPredictor, joiner: TransducerJoiner, contexts: torch.Tensor
) -> torch.Tensor:
    """(N, context_size) token ids -> (N, joiner_dim) projected predictor output."""
    return joiner.decoder_proj(predictor(contexts, need_pad=False)).squeeze(1)


def _joint_log_probs(
    joiner: TransducerJoiner,
    projected_frames: torch.Tensor,
    projected_predictions: torch.Tensor,
    blank_id: int,
    blank_penalty: float,
) -> torch.Tensor:
    """(N, joiner_dim) twice -> (N, vocab) log-probabilities, with `blank_penalty` taken off the blank logit."""
    logits = joiner(projected_frames, projected_predictions, project_input=False).float()
    if blank_penalty != 0.0:
        logits[:, blank_id] -= blank_penalty
    return logits.log_softmax(dim=-1)


@torch.no_grad()
def greedy_search(
    encoder_out: torch.Tensor,
    encoder_lengths: torch.Tensor,
    predictor: TransducerPredictor,
    joiner: TransducerJoiner,
    max_symbols_per_frame: int = 1,
    blank_penalty: float = 0.0,
) -> list[DecodedSequence]:
    """Emit the most likely token at each step; a blank (or `max_symbols_per_frame` tokens) ends the frame.

    Args:
        encoder_out: (batch, frames, encoder_dim) encoder output.
        encoder_lengths: (batch,) number of valid frames per utterance.
        predictor, joiner: the transducer's stateless predictor and joiner.
        max_symbols_per_frame: tokens allowed per frame; 1 is icefall's batched greedy search.
        blank_penalty: subtracted from the blank logit before the softmax (> 0 favours tokens).

    Returns:
        One `DecodedSequence` per utterance; `score` sums the log-probabilities of every decision
        taken (tokens and blanks), so with one symbol per frame it is the path's log-probability
        under the topology that `modified_beam_search` searches.
    """
    _check_search_inputs(encoder_out, encoder_lengths)
    if max_symbols_per_frame < 1:
        raise ValueError(f"max_symbols_per_frame must be at least 1; got {max_symbols_per_frame}")
    batch_size = encoder_out.shape[0]
    device = encoder_out.device
    blank_id = predictor.blank_id

    projected_frames = joiner.encoder_proj(encoder_out)  # (batch, frames, joiner_dim)
    contexts = torch.tensor([_start_context(predictor)] * batch_size, dtype=torch.long, device=device)
    projected_predictions = _project_predictor(predictor, joiner, contexts)  # (batch, joiner_dim)
    encoder_lengths = encoder_lengths.to(device)
    results = [DecodedSequence() for _ in range(batch_size)]
    scores = torch.zeros(batch_size, dtype=torch.float64, device=device)

    for frame in range(max(encoder_lengths.tolist(), default=0)):
        in_frame = encoder_lengths > frame  # utterances still emitting in this frame
        for _ in range(max_symbols_per_frame):
            rows = in_frame.nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            log_probs = _joint_log_probs(
                joiner, projected_frames[rows, frame], projected_predictions[rows], blank_id, blank_penalty
            )
            best_log_probs, best_tokens = log_probs.max(dim=-1)
            scores[rows] += best_log_probs.double()
            is_token = best_tokens != blank_id
            in_frame[rows[~is_token]] = False
            if not bool(is_token.any()):
                break
            token_rows, tokens = rows[is_token], best_tokens[is_token]
            for row, token in zip(token_rows.tolist(), tokens.tolist()):
                results[row].tokens.append(token)
                results[row].frames.append(frame)
            contexts[token_rows] = torch.cat([contexts[token_rows, 1:], tokens[:, None]], dim=1)
            projected_predictions[token_rows] = _project_predictor(predictor, joiner, contexts[token_rows])

    for result, score in zip(results, scores.tolist()):
        result.score = score
    return results


def _log_add(first: float, second: float) -> float:
    larger, smaller = max(first, second), min(first, second)
    return larger + math.log1p(math.exp(smaller - larger))


@torch.no_grad()
def modified_beam_search(
    encoder_out: torch.Tensor,
    encoder_lengths: torch.Tensor,
    predictor: TransducerPredictor,
    joiner: TransducerJoiner,
    beam: int = 4,
    blank_penalty: float = 0.0,
    length_norm: bool = True,
) -> list[DecodedSequence]:
    """icefall's modified beam search: at most one token per frame, hypotheses merged by token sequence.

    At every frame each utterance keeps the `beam` best (hypothesis, next token) pairs over all its
    hypotheses and the whole vocabulary; pairs that give the same token sequence are merged by
    adding their probabilities (log-add), and the merged entry keeps the frames of the better one.

    Args:
        encoder_out: (batch, frames, encoder_dim) encoder output.
        encoder_lengths: (batch,) number of valid frames per utterance.
        predictor, joiner: the transducer's stateless predictor and joiner.
        beam: hypotheses kept per utterance.
        blank_penalty: subtracted from the blank logit before the softmax (> 0 favours tokens).
        length_norm: pick the final hypothesis by score / (tokens + context_size), as icefall's
            decoding does; False picks the highest score.

    Returns:
        One `DecodedSequence` per utterance; `score` is the merged log-probability of its tokens.
    """
    # Over 60 lines on purpose: a third is the docstring; the per-frame loop (expand, top-k over hypotheses x
    # vocabulary, merge equal sequences) stays in one piece so it reads against icefall's modified_beam_search.
    _check_search_inputs(encoder_out, encoder_lengths)
    if beam < 1:
        raise ValueError(f"beam must be at least 1; got {beam}")
    batch_size = encoder_out.shape[0]
    device = encoder_out.device
    blank_id = predictor.blank_id
    start_context = _start_context(predictor)
    context_size = len(start_context)

    projected_frames = joiner.encoder_proj(encoder_out)  # (batch, frames, joiner_dim)
    lengths = encoder_lengths.tolist()
    # Per utterance: token sequence -> (frames of its tokens, log-probability).
    beams: list[dict[tuple[int, ...], tuple[tuple[int, ...], float]]] = [{(): ((), 0.0)} for _ in range(batch_size)]

    for frame in range(max(lengths, default=0)):
        active = [utterance for utterance in range(batch_size) if lengths[utterance] > frame]
        hypotheses = [(utterance, slot, tokens) for utterance in active for slot, tokens in enumerate(beams[utterance])]
        contexts = torch.tensor(
            [(start_context + tokens)[-context_size:] for _, _, tokens in hypotheses], dtype=torch.long, device=device
        )
        utterance_rows = torch.tensor([utterance for utterance, _, _ in hypotheses], device=device)
        log_probs = _joint_log_probs(
            joiner,
            projected_frames[utterance_rows, frame],
            _project_predictor(predictor, joiner, contexts),
            blank_id,
            blank_penalty,
        )  # (hypotheses, vocab)
        previous_scores = torch.tensor(
            [beams[utterance][tokens][1] for utterance, _, tokens in hypotheses], dtype=torch.float64, device=device
        )
        vocab_size = log_probs.shape[1]

        # Lay the candidates out as (active utterances, beam slots, vocab) so one topk serves the batch.
        candidates = torch.full((len(active), beam, vocab_size), -math.inf, dtype=torch.float64, device=device)
        active_index = {utterance: index for index, utterance in enumerate(active)}
        candidate_rows = torch.tensor([active_index[utterance] for utterance, _, _ in hypotheses], device=device)
        candidate_slots = torch.tensor([slot for _, slot, _ in hypotheses], device=device)
        candidates[candidate_rows, candidate_slots] = log_probs.double() + previous_scores[:, None]
        top_scores, top_indices = candidates.flatten(1).topk(beam, dim=1)

        for utterance, row_scores, row_indices in zip(active, top_scores.tolist(), top_indices.tolist()):
            old_beam = list(beams[utterance].items())
            new_beam: dict[tuple[int, ...], tuple[tuple[int, ...], float]] = {}
            for score, index in zip(row_scores, row_indices):
                if score == -math.inf:
                    continue
                tokens, (frames, _) = old_beam[index // vocab_size]
                token = index % vocab_size
                if token != blank_id:
                    tokens, frames = tokens + (token,), frames + (frame,)
                if tokens in new_beam:  # candidates arrive best first: keep the earlier frames
                    kept_frames, kept_score = new_beam[tokens]
                    new_beam[tokens] = (kept_frames, _log_add(kept_score, score))
                else:
                    new_beam[tokens] = (frames, score)
            beams[utterance] = new_beam

    def rank(item: tuple[tuple[int, ...], tuple[tuple[int, ...], float]]) -> float:
        tokens, (_, score) = item
        return score / (len(tokens) + context_size) if length_norm else score

    results = []
    for utterance_beam in beams:
        tokens, (frames, score) = max(utterance_beam.items(), key=rank)
        results.append(DecodedSequence(tokens=list(tokens), frames=list(frames), score=score))
    return results
