"""CTC head: frame-wise vocabulary logits and the CTC loss."""

import torch
import torch.nn.functional as F
from torch import nn

from ..masks import lengths_to_mask
from .labels import check_label_ids, label_lengths


class CTCHead(nn.Module):
    """Dropout + Linear: (batch, frames, hidden) → (batch, frames, vocab) logits.

    Padded frames get logits that decode to the blank, so anything that decodes every frame of a
    padded batch (e.g. transformers' ASR pipeline) emits nothing there. The CTC loss never reads them.
    """

    def __init__(self, hidden_size: int, vocab_size: int, blank_id: int, dropout: float = 0.1):
        super().__init__()
        self.blank_id = blank_id
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, vocab_size)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.proj(self.dropout(hidden_states))
        if frame_mask is None:
            return logits
        # Built without an indexed write: `tensor[i] = 0.0` copies a host scalar, which CUDA-graph capture refuses.
        vocabulary = torch.arange(logits.shape[-1], device=logits.device)
        blank_only = torch.where(vocabulary == self.blank_id, 0.0, torch.finfo(logits.dtype).min).to(logits.dtype)
        return torch.where(frame_mask.unsqueeze(-1).bool(), logits, blank_only)


def ctc_loss(
    logits: torch.Tensor,
    logit_lengths: torch.Tensor,
    labels: torch.Tensor,
    blank_id: int,
    zero_infinity: bool = True,
) -> torch.Tensor:
    """Per-utterance CTC negative log-likelihood (batch,), computed in float32.

    logits (batch, frames, vocab); labels (batch, max_tokens) padded with -100. Ids outside the
    vocabulary raise a ValueError.
    """
    check_label_ids(labels, logits.shape[-1])
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)
    target_lengths = label_lengths(labels)
    targets = labels.masked_fill(~lengths_to_mask(target_lengths, labels.shape[1]), blank_id)
    with torch.backends.cudnn.flags(enabled=False):
        return F.ctc_loss(
            log_probs, targets, logit_lengths, target_lengths,
            blank=blank_id, reduction="none", zero_infinity=zero_infinity,
        )
