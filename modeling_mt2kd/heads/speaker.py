"""Speaker head: attentive statistics pooling → utterance embedding; training-only classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STATS_EPS = 1e-12


def masked_mean_std(
    hidden_states: torch.Tensor, weights: torch.Tensor, eps: float = STATS_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and standard deviation over time: (batch, channels, frames) with weights
    (batch, 1 or channels, frames) that sum to 1 → two (batch, channels)."""
    mean = (weights * hidden_states).sum(dim=2)
    variance = (weights * (hidden_states - mean.unsqueeze(2)).pow(2)).sum(dim=2)
    return mean, variance.clamp(min=eps).sqrt()


class AttentiveStatisticsPooling(nn.Module):
    """ECAPA-TDNN's attentive statistics pooling with global context.

    Frame attention is computed from each frame and the utterance's mean and std; the output is
    the attention-weighted mean and std: (batch, frames, channels) → (batch, 2 · channels).
    """

    def __init__(self, channels: int, attention_channels: int = 128):
        super().__init__()
        self.attention_in = nn.Conv1d(3 * channels, attention_channels, kernel_size=1)
        self.attention_norm = nn.BatchNorm1d(attention_channels)
        self.attention_out = nn.Conv1d(attention_channels, channels, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        features = hidden_states.transpose(1, 2)  # (batch, channels, frames)
        mask = frame_mask.unsqueeze(1).to(features.dtype)  # (batch, 1, frames)
        num_frames = features.shape[2]
        mean, std = masked_mean_std(features, mask / mask.sum(dim=2, keepdim=True))
        context = torch.cat(
            [features, mean.unsqueeze(2).expand(-1, -1, num_frames), std.unsqueeze(2).expand(-1, -1, num_frames)],
            dim=1,
        )
        scores = self.attention_out(torch.tanh(self.attention_norm(F.relu(self.attention_in(context)))))
        scores = scores.masked_fill(mask == 0, float("-inf"))
        mean, std = masked_mean_std(features, scores.softmax(dim=2))
        return torch.cat([mean, std], dim=1)


class SpeakerEmbeddingHead(nn.Module):
    """(batch, frames, hidden) + mask → speaker embedding (batch, embedding_dim)."""

    def __init__(self, hidden_size: int, embedding_dim: int, attention_channels: int = 128):
        super().__init__()
        self.pooling = AttentiveStatisticsPooling(hidden_size, attention_channels)
        self.embedding = nn.Linear(2 * hidden_size, embedding_dim)

    @classmethod
    def from_config(cls, config) -> "SpeakerEmbeddingHead":
        """The head for an `MT2KDConfig`."""
        return cls(config.output_dim, config.speaker_embedding_dim, config.speaker_attention_channels)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.pooling(hidden_states, frame_mask))


def speaker_loss(
    embeddings: torch.Tensor,
    classifier: nn.Linear,
    speaker_labels: torch.Tensor,
    loss_type: str = "cross_entropy",
    margin: float = 0.2,
    scale: float = 30.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-utterance speaker-identification loss (batch,) and the classifier logits.

    "cross_entropy": softmax over `classifier(embeddings)` (the authors' recipe).
    "aam": additive angular margin — scale · cos(θ + margin) for the true class, scale · cos θ for
    the others, with θ the angle between the embedding and the class weight (bias unused).
    """
    if loss_type == "cross_entropy":
        logits = classifier(embeddings)
        return F.cross_entropy(logits.float(), speaker_labels, reduction="none"), logits
    cosine = F.linear(F.normalize(embeddings.float()), F.normalize(classifier.weight.float()))
    cosine = cosine.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
    target = F.one_hot(speaker_labels, cosine.shape[1]).to(torch.bool)
    with_margin = torch.cos(torch.acos(cosine) + margin)
    logits = scale * torch.where(target, with_margin, cosine)
    return F.cross_entropy(logits, speaker_labels, reduction="none"), scale * cosine
