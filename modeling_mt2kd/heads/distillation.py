"""Stage-1 distillation: the Whisper-frame projection and the three teacher-matching losses."""

import torch
import torch.nn.functional as F
from torch import nn


class WhisperProjection(nn.Module):
    """Linear(ReLU(encoder_out)): (batch, frames, hidden) at 25 Hz → (batch, frames,
    frames_per_frame · whisper_dim), i.e. `frames_per_frame` consecutive 50 Hz teacher frames."""

    def __init__(self, hidden_size: int, whisper_dim: int, frames_per_frame: int = 2):
        super().__init__()
        self.proj = nn.Linear(hidden_size, frames_per_frame * whisper_dim)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.proj(F.relu(hidden_states))


def stack_teacher_frames(teacher_frames: torch.Tensor, num_frames: int, frames_per_frame: int = 2) -> torch.Tensor:
    """(batch, teacher_frames, dim) at 50 Hz → (batch, num_frames, frames_per_frame · dim) at 25 Hz.

    Consecutive teacher frames are concatenated; a short tail is padded by repeating the last
    teacher frame (those frames lie past the utterance end and are masked by the loss).
    """
    batch_size, available, dim = teacher_frames.shape
    needed = num_frames * frames_per_frame
    if available < needed:
        if available == 0:
            raise ValueError("teacher targets have no frames")
        tail = teacher_frames[:, -1:].expand(batch_size, needed - available, dim)
        teacher_frames = torch.cat([teacher_frames, tail], dim=1)
    return teacher_frames[:, :needed].reshape(batch_size, num_frames, frames_per_frame * dim)


def frame_l1_loss(prediction: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Per-utterance L1 over valid frames, summed and divided by the target width (batch,)."""
    difference = (prediction.float() - target.float()).abs() * frame_mask.unsqueeze(-1)
    return difference.sum(dim=(1, 2)) / target.shape[-1]


def cosine_distance_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity per utterance (batch,)."""
    return 1.0 - F.cosine_similarity(prediction.float(), target.float(), dim=-1, eps=1e-6)
