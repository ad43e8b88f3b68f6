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


def stack_teacher_frames(
    teacher_frames: torch.Tensor,
    num_frames: int,
    frames_per_frame: int = 2,
    frame_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """(batch, teacher_frames, dim) at 50 Hz → (batch, num_frames, frames_per_frame · dim) at 25 Hz:
    the one owner of teacher-frame stacking (the model's Whisper targets and the teacher adapters).

    Consecutive teacher frames are concatenated; surplus frames are cut, and a teacher that runs short
    has its last frame repeated: the last of the batch, or of each utterance when `frame_lengths`
    (batch,) gives its valid frames (frames past the student's utterance end are masked by the loss).
    """
    batch_size, available, dim = teacher_frames.shape
    if available == 0:
        raise ValueError("teacher targets have no frames")
    wanted = torch.arange(num_frames * frames_per_frame, device=teacher_frames.device)
    if frame_lengths is None:
        source = wanted.clamp(max=available - 1).expand(batch_size, -1)
    else:
        source = torch.minimum(wanted[None, :], frame_lengths[:, None].to(wanted.device) - 1)
    gathered = teacher_frames.gather(1, source[:, :, None].expand(batch_size, -1, dim))
    return gathered.reshape(batch_size, num_frames, frames_per_frame * dim)


def frame_l1_loss(prediction: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Per-utterance L1 over valid frames, summed and divided by the target width (batch,)."""
    difference = (prediction.float() - target.float()).abs() * frame_mask.unsqueeze(-1)
    return difference.sum(dim=(1, 2)) / target.shape[-1]


def cosine_distance_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity per utterance (batch,)."""
    return 1.0 - F.cosine_similarity(prediction.float(), target.float(), dim=-1, eps=1e-6)
