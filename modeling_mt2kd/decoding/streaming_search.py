"""Searches that decode a stream chunk by chunk, carrying their context from one chunk to the next.

Frames are counted from the start of each stream, at the encoder's 25 Hz output rate, so a token's
`frames` entry is its time in the whole stream (frame * 0.04 s).
"""

from __future__ import annotations

import torch

from .decoded_sequence import DecodedSequence
from .transducer_search import (
    TransducerJoiner,
    TransducerPredictor,
    _joint_log_probs,
    _log_add,
    _project_predictor,
    _start_context,
)


class StreamingGreedySearch:
    """Greedy transducer search over successive chunks of a batch of streams (one symbol per frame,
    as the authors' streaming greedy search).

    The predictor context (last `context_size` tokens) and its projection persist across chunks.
    Every frame of a chunk is decoded unless `lengths` says otherwise.
    """

    def __init__(
        self,
        predictor: TransducerPredictor,
        joiner: TransducerJoiner,
        batch_size: int = 1,
        blank_penalty: float = 0.0,
        device: torch.device | str | None = None,
    ):
        self.predictor, self.joiner = predictor, joiner
        self.blank_id = predictor.blank_id
        self.blank_penalty = blank_penalty
        self.contexts = torch.tensor([_start_context(predictor)] * batch_size, dtype=torch.long, device=device)
        self.projected_predictions = _project_predictor(predictor, joiner, self.contexts)
        self.results = [DecodedSequence() for _ in range(batch_size)]
        self.frames_done = [0] * batch_size
        self.last_logits: torch.Tensor | None = None  # (batch, frames, vocab) of the last chunk

    @property
    def batch_size(self) -> int:
        return len(self.results)

    @torch.no_grad()
    def step(self, encoder_out: torch.Tensor, lengths: torch.Tensor | None = None) -> list[DecodedSequence]:
        """Decode one chunk's encoder output (batch, frames, hidden); returns the results so far."""
        if encoder_out.ndim != 3 or encoder_out.shape[0] != self.batch_size:
            raise ValueError(
                f"expected encoder output of shape ({self.batch_size}, frames, hidden) for this search's "
                f"{self.batch_size} streams; got {tuple(encoder_out.shape)}"
            )
        batch_size, num_frames, _ = encoder_out.shape
        limits = [num_frames] * batch_size if lengths is None else lengths.tolist()
        projected_frames = self.joiner.encoder_proj(encoder_out)
        all_logits = []
        for frame in range(num_frames):
            logits = self.joiner(projected_frames[:, frame], self.projected_predictions, project_input=False)
            all_logits.append(logits)
            scores = logits.float()
            if self.blank_penalty:
                scores[:, self.blank_id] -= self.blank_penalty
            log_probs, tokens = scores.log_softmax(dim=-1).max(dim=-1)
            emitted = []
            for row, (token, log_prob) in enumerate(zip(tokens.tolist(), log_probs.tolist())):
                if frame >= limits[row]:
                    continue
                self.results[row].score += log_prob
                if token != self.blank_id:
                    self.results[row].tokens.append(token)
                    self.results[row].frames.append(self.frames_done[row] + frame)
                    emitted.append(row)
            if emitted:
                rows = torch.tensor(emitted, device=self.contexts.device)
                new_tokens = tokens[rows].unsqueeze(1)
                self.contexts[rows] = torch.cat([self.contexts[rows, 1:], new_tokens], dim=1)
                self.projected_predictions[rows] = _project_predictor(self.predictor, self.joiner, self.contexts[rows])
        self.last_logits = torch.stack(all_logits, dim=1) if all_logits else None
        self.frames_done = [done + min(limit, num_frames) for done, limit in zip(self.frames_done, limits)]
        return self.results

    def select(self, streams: list[int]) -> "StreamingGreedySearch":
        """Keep only these streams (e.g. after others finished), in this order."""
        index = torch.tensor(streams, dtype=torch.long, device=self.contexts.device)
        self.contexts = self.contexts.index_select(0, index)
        self.projected_predictions = self.projected_predictions.index_select(0, index)
        self.results = [self.results[i] for i in streams]
        self.frames_done = [self.frames_done[i] for i in streams]
        return self


class StreamingCTCSearch:
    """Best-path CTC over successive chunks: repeats are collapsed across chunk boundaries too."""

    def __init__(self, blank_id: int = 0, batch_size: int = 1):
        self.blank_id = blank_id
        self.previous = [-1] * batch_size
        self.results = [DecodedSequence() for _ in range(batch_size)]
        self.frames_done = [0] * batch_size

    @torch.no_grad()
    def step(self, logits: torch.Tensor, lengths: torch.Tensor | None = None) -> list[DecodedSequence]:
        """logits (batch, frames, vocab) of one chunk; returns the results so far."""
        if logits.ndim != 3 or logits.shape[0] != len(self.results):
            raise ValueError(
                f"expected CTC logits of shape ({len(self.results)}, frames, vocab); got {tuple(logits.shape)}"
            )
        best_log_probs, best_ids = logits.float().log_softmax(dim=-1).max(dim=-1)
        num_frames = logits.shape[1]
        limits = [num_frames] * logits.shape[0] if lengths is None else lengths.tolist()
        for row, (ids, log_probs) in enumerate(zip(best_ids.tolist(), best_log_probs.tolist())):
            result = self.results[row]
            for frame in range(min(limits[row], num_frames)):
                token = ids[frame]
                result.score += log_probs[frame]
                if token != self.blank_id and token != self.previous[row]:
                    result.tokens.append(token)
                    result.frames.append(self.frames_done[row] + frame)
                self.previous[row] = token
            self.frames_done[row] += min(limits[row], num_frames)
        return self.results


class StreamingModifiedBeamSearch:
    """Modified beam search (at most one token per frame, hypotheses merged by token sequence) over successive
    chunks: the beam of every stream persists across chunks, so decoding a stream chunk by chunk gives what
    `modified_beam_search` gives on all its frames at once.
    """

    def __init__(
        self,
        predictor: TransducerPredictor,
        joiner: TransducerJoiner,
        batch_size: int = 1,
        beam: int = 4,
        blank_penalty: float = 0.0,
        length_norm: bool = True,
    ):
        if beam < 1:
            raise ValueError(f"beam must be at least 1; got {beam}")
        self.predictor, self.joiner = predictor, joiner
        self.beam, self.blank_penalty, self.length_norm = beam, blank_penalty, length_norm
        self.start_context = _start_context(predictor)
        # Per stream: token sequence -> (frames of its tokens, log-probability).
        self.beams: list[dict[tuple[int, ...], tuple[tuple[int, ...], float]]] = [
            {(): ((), 0.0)} for _ in range(batch_size)
        ]
        self.frames_done = [0] * batch_size

    @property
    def results(self) -> list[DecodedSequence]:
        """The best hypothesis of each stream so far (by score / (tokens + context_size) with length_norm)."""
        context_size = len(self.start_context)

        def rank(item):
            tokens, (_, score) = item
            return score / (len(tokens) + context_size) if self.length_norm else score

        best = [max(beam.items(), key=rank) for beam in self.beams]
        return [DecodedSequence(tokens=list(tokens), frames=list(frames), score=score) for tokens, (frames, score) in best]

    @torch.no_grad()
    def step(self, encoder_out: torch.Tensor, lengths: torch.Tensor | None = None) -> list[DecodedSequence]:
        """Decode one chunk's encoder output (batch, frames, hidden); returns the best results so far."""
        batch_size = len(self.beams)
        if encoder_out.ndim != 3 or encoder_out.shape[0] != batch_size:
            raise ValueError(
                f"expected encoder output of shape ({batch_size}, frames, hidden); got {tuple(encoder_out.shape)}"
            )
        num_frames = encoder_out.shape[1]
        limits = [num_frames] * batch_size if lengths is None else [min(int(n), num_frames) for n in lengths.tolist()]
        device = encoder_out.device
        blank_id = self.predictor.blank_id
        context_size = len(self.start_context)
        projected_frames = self.joiner.encoder_proj(encoder_out)
        for frame in range(num_frames):
            active = [stream for stream in range(batch_size) if frame < limits[stream]]
            if not active:
                break
            hypotheses = [(stream, tokens) for stream in active for tokens in self.beams[stream]]
            contexts = torch.tensor(
                [(self.start_context + tokens)[-context_size:] for _, tokens in hypotheses], dtype=torch.long,
                device=device,
            )
            rows = torch.tensor([stream for stream, _ in hypotheses], device=device)
            log_probs = _joint_log_probs(
                self.joiner, projected_frames[rows, frame], _project_predictor(self.predictor, self.joiner, contexts),
                blank_id, self.blank_penalty,
            ).double()
            for stream in active:
                old = list(self.beams[stream].items())
                start = next(i for i, (s, _) in enumerate(hypotheses) if s == stream)
                scores = log_probs[start : start + len(old)] + torch.tensor(
                    [score for _, (_, score) in old], dtype=torch.float64, device=device
                ).unsqueeze(1)
                top_scores, top_indices = scores.flatten().topk(min(self.beam, scores.numel()))
                vocab_size = scores.shape[1]
                new_beam: dict[tuple[int, ...], tuple[tuple[int, ...], float]] = {}
                for score, index in zip(top_scores.tolist(), top_indices.tolist()):
                    tokens, (frames, _) = old[index // vocab_size]
                    token = index % vocab_size
                    if token != blank_id:
                        tokens, frames = tokens + (token,), frames + (self.frames_done[stream] + frame,)
                    if tokens in new_beam:  # best first: keep the earlier frames, add the probabilities
                        kept_frames, kept_score = new_beam[tokens]
                        new_beam[tokens] = (kept_frames, _log_add(kept_score, score))
                    else:
                        new_beam[tokens] = (frames, score)
                self.beams[stream] = new_beam
        self.frames_done = [done + limit for done, limit in zip(self.frames_done, limits)]
        return self.results
