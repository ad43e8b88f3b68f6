"""Transducer hypotheses carried through pipeline batching as padded tensors.

The transformers pipelines split a batch's outputs row by row, and leave an unbatched output as it is; ragged Python
lists would need one rule per case, `(batch, tokens)` tensors need none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

__all__ = ["DecodedHypothesis", "hypotheses_to_tensors", "tensors_to_tokens"]

# Fills the token and frame rows after the end of a hypothesis.
NO_TOKEN = -1


class DecodedHypothesis(Protocol):
    """One utterance's decoding result (`modeling_mt2kd.decoding.DecodedSequence`)."""

    tokens: list[int]  # emitted token ids, no blanks
    frames: list[int]  # the encoder frame (25 Hz) of each token
    score: float


def hypotheses_to_tensors(hypotheses: Sequence[DecodedHypothesis]) -> dict[str, torch.Tensor]:
    """`tokens` and `token_frames`, each `(batch, max_tokens)` int64 padded with -1."""
    max_tokens = max((len(hypothesis.tokens) for hypothesis in hypotheses), default=0)
    tokens = torch.full((len(hypotheses), max_tokens), NO_TOKEN, dtype=torch.long)
    frames = torch.full((len(hypotheses), max_tokens), NO_TOKEN, dtype=torch.long)
    for row, hypothesis in enumerate(hypotheses):
        tokens[row, : len(hypothesis.tokens)] = torch.as_tensor(hypothesis.tokens, dtype=torch.long)
        frames[row, : len(hypothesis.frames)] = torch.as_tensor(hypothesis.frames, dtype=torch.long)
    return {"tokens": tokens, "token_frames": frames}


def tensors_to_tokens(tokens: torch.Tensor, token_frames: torch.Tensor) -> tuple[list[int], list[int]]:
    """The token ids and frames of one padded row, `(max_tokens,)` or `(1, max_tokens)`."""
    tokens, token_frames = tokens.reshape(-1), token_frames.reshape(-1)
    kept = tokens != NO_TOKEN
    return tokens[kept].tolist(), token_frames[kept].tolist()
