"""Searches that decode a stream chunk by chunk, carrying their context from one chunk to the next.

Frames are counted from the start of each stream, at the encoder's 25 Hz output rate, so a token's
`frames` entry is its time in the whole stream (frame * 0.04 s).
"""

from __future__ import annotations

import torch

from .decoded_sequence import DecodedSequence
from .transducer_search import TransducerJoiner, TransducerPredictor, _project_predictor, _start_context


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
