"""Best-path (greedy) CTC decoding with the frame of each emitted token."""

import torch

from .decoded_sequence import DecodedSequence, check_frame_lengths


@torch.no_grad()
def ctc_greedy_decode(logits: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0) -> list[DecodedSequence]:
    """Take the best label per frame, collapse repeats, then drop blanks.

    Args:
        logits: (batch, frames, vocab) CTC logits or log-probabilities (normalised here either way).
        lengths: (batch,) number of valid frames per utterance.
        blank_id: the CTC blank token id.

    Returns:
        One `DecodedSequence` per utterance: `frames[i]` is the first frame of the run that
        emitted `tokens[i]`; `score` is the log-probability of the best path over the valid frames.
    """
    if logits.ndim != 3:
        raise ValueError(f"expected logits of shape (batch, frames, vocab); got {tuple(logits.shape)}")
    batch_size, num_frames, vocab_size = logits.shape
    if not 0 <= blank_id < vocab_size:
        raise ValueError(f"blank_id {blank_id} is outside the vocabulary [0, {vocab_size})")
    check_frame_lengths(lengths, batch_size, num_frames)

    best_log_probs, best_ids = logits.float().log_softmax(dim=-1).max(dim=-1)  # (batch, frames)
    valid = torch.arange(num_frames, device=logits.device) < lengths.to(logits.device)[:, None]
    previous_ids = torch.nn.functional.pad(best_ids[:, :-1], (1, 0), value=-1)
    emitted = valid & (best_ids != blank_id) & (best_ids != previous_ids)
    scores = best_log_probs.masked_fill(~valid, 0.0).sum(dim=-1)

    results = []
    for utterance_ids, utterance_emitted, score in zip(best_ids, emitted, scores.tolist()):
        results.append(
            DecodedSequence(
                tokens=utterance_ids[utterance_emitted].tolist(),
                frames=utterance_emitted.nonzero().squeeze(1).tolist(),
                score=score,
            )
        )
    return results
