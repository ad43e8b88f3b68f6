"""Stateless transducer: predictor (embedding + context convolution), joiner, and the RNN-T loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..encoder.activation_constraints import Balancer
from ..initialization import with_initial_scale
from ..losses import pruned_transducer_loss
from ..masks import lengths_to_mask
from .labels import check_label_ids, label_lengths


class TransducerPredictor(nn.Module):
    """Stateless prediction network over the last `context_size` tokens.

    Token id -1 stands for "no token" (zero embedding), used to pad the start context in decoding.
    """

    def __init__(self, vocab_size: int, decoder_dim: int, blank_id: int, context_size: int):
        super().__init__()
        self.blank_id = blank_id
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, decoder_dim)
        self.embedding_balancer = Balancer(channel_dim=-1, min_positive=0.0, max_positive=1.0, min_abs=0.5, max_abs=1.0, prob=0.05)
        self.output_balancer = Balancer(channel_dim=-1, min_positive=0.0, max_positive=1.0, min_abs=0.5, max_abs=1.0, prob=0.05)
        if context_size > 1:
            # Groups of 4 channels mix the context window.
            self.context_conv = nn.Conv1d(
                decoder_dim, decoder_dim, kernel_size=context_size, groups=decoder_dim // 4, bias=False
            )
        else:
            self.context_conv = None

    def forward(self, tokens: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        """tokens (batch, U) → (batch, U, decoder_dim) with need_pad (training: left-pad the context);
        with need_pad=False, tokens are exactly the context (batch, context_size) → (batch, 1, decoder_dim)."""
        tokens = tokens.long()
        embedded = self.embedding_balancer(self.embedding(tokens.clamp(min=0)) * (tokens >= 0).unsqueeze(-1))
        if self.context_conv is None:
            return embedded
        if need_pad:
            mixed = self.context_conv(F.pad(embedded.transpose(1, 2), (self.context_size - 1, 0))).transpose(1, 2)
        elif embedded.shape[1] != self.context_size:
            raise ValueError(
                f"need_pad=False expects exactly context_size={self.context_size} tokens, got {embedded.shape[1]}"
            )
        else:
            mixed = self._context_conv_one_position(embedded)
        return self.output_balancer(F.relu(mixed))

    def _context_conv_one_position(self, embedded: torch.Tensor) -> torch.Tensor:
        """`context_conv` at its only output position, (batch, context_size, decoder_dim) → (batch, 1, decoder_dim),
        as one batched matmul over the channel groups. Decoding calls this once per frame, and conv1d's per-call
        overhead on this tiny shape made it the largest cost of greedy search on CPU (benchmarks/RESULTS.md)."""
        weight = self.context_conv.weight  # (out_channels, in_channels / groups, context_size)
        groups = self.context_conv.groups
        out_channels, in_per_group, context_size = weight.shape
        batch_size = embedded.shape[0]
        # (groups, batch, in_per_group · context_size), flattened in the weight's (channel, position) order.
        windows = embedded.reshape(batch_size, context_size, groups, in_per_group).permute(2, 0, 3, 1)
        # An explicit copy then a view: reshape would be a view for a batch of 1 only, a special case a
        # captured graph would guard on.
        windows = windows.clone(memory_format=torch.contiguous_format).view(groups, batch_size, in_per_group * context_size)
        group_weights = weight.view(groups, out_channels // groups, in_per_group * context_size).transpose(1, 2)
        mixed = torch.bmm(windows, group_weights)  # (groups, batch, out_channels / groups)
        return mixed.transpose(0, 1).clone(memory_format=torch.contiguous_format).view(batch_size, 1, out_channels)


class TransducerJoiner(nn.Module):
    """logits = output_linear(tanh(encoder_proj(e) + decoder_proj(d))), broadcasting over any
    leading dimensions."""

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int):
        super().__init__()
        self.encoder_proj = with_initial_scale(nn.Linear(encoder_dim, joiner_dim), 0.25)
        self.decoder_proj = with_initial_scale(nn.Linear(decoder_dim, joiner_dim), 0.25)
        self.output_linear = nn.Linear(joiner_dim, vocab_size)

    def forward(
        self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True
    ) -> torch.Tensor:
        if project_input:
            encoder_out, decoder_out = self.encoder_proj(encoder_out), self.decoder_proj(decoder_out)
        return self.output_linear(torch.tanh(encoder_out + decoder_out))


class TransducerHead(nn.Module):
    """Predictor, joiner, and the linear "simple" projections used by the pruned RNN-T loss."""

    def __init__(self, encoder_dim: int, vocab_size: int, decoder_dim: int, joiner_dim: int, blank_id: int, context_size: int):
        super().__init__()
        self.predictor = TransducerPredictor(vocab_size, decoder_dim, blank_id, context_size)
        self.joiner = TransducerJoiner(encoder_dim, decoder_dim, joiner_dim, vocab_size)
        self.simple_am_proj = with_initial_scale(nn.Linear(encoder_dim, vocab_size), 0.25)
        self.simple_lm_proj = with_initial_scale(nn.Linear(decoder_dim, vocab_size), 0.25)

    @classmethod
    def from_config(cls, config) -> "TransducerHead":
        """The head for an `MT2KDConfig` (encoder width = the config's output width)."""
        return cls(
            config.output_dim, config.vocab_size, config.decoder_dim, config.joiner_dim, config.blank_id,
            config.context_size,
        )

    def predictor_inputs(self, labels: torch.Tensor) -> torch.Tensor:
        """(batch, U) labels padded with -100 → (batch, U + 1): blank, then the tokens, blank-padded."""
        blank = self.predictor.blank_id
        tokens = labels.masked_fill(labels < 0, blank)
        return F.pad(tokens, (1, 0), value=blank)

    def loss(
        self,
        encoder_out: torch.Tensor,
        encoder_lengths: torch.Tensor,
        labels: torch.Tensor,
        loss_type: str = "pruned",
        prune_range: int = 5,
        simple_loss_scale: float = 0.5,
        lm_scale: float = 0.25,
        am_scale: float = 0.0,
        warmup_fraction: float = 1.0,
    ) -> torch.Tensor:
        """Per-utterance transducer negative log-likelihood (batch,), float32.

        "pruned": simple_scale · simple + pruned_scale · pruned loss, where during warm-up
        (`warmup_fraction` < 1) the simple weight falls from 1 to `simple_loss_scale` and the pruned
        weight rises from 0.1 to 1. "full": the RNN-T loss over the whole lattice. Ids outside the
        vocabulary raise a ValueError.
        """
        check_label_ids(labels, self.joiner.output_linear.out_features)
        blank = self.predictor.blank_id
        decoder_out = self.predictor(self.predictor_inputs(labels))
        target_lengths = label_lengths(labels)
        targets = labels.masked_fill(~lengths_to_mask(target_lengths, labels.shape[1]), blank)
        if loss_type == "full":
            import torchaudio  # training only: inference (and remote code) works without torchaudio

            logits = self.joiner(encoder_out.unsqueeze(2), decoder_out.unsqueeze(1)).float()
            return torchaudio.functional.rnnt_loss(
                logits, targets.int(), encoder_lengths.int(), target_lengths.int(), blank=blank, reduction="none"
            )
        warmup_fraction = min(max(warmup_fraction, 0.0), 1.0)
        losses = pruned_transducer_loss(
            encoder_out, decoder_out, self.joiner, self.simple_am_proj, self.simple_lm_proj, targets,
            target_lengths, encoder_lengths, blank_id=blank, prune_range=prune_range, am_scale=am_scale,
            lm_scale=lm_scale, reduction="none",
        )
        simple_scale = 1.0 - warmup_fraction * (1.0 - simple_loss_scale)
        pruned_scale = 0.1 + 0.9 * warmup_fraction
        return simple_scale * losses.simple_loss + pruned_scale * losses.pruned_loss
