"""Line up a 50 Hz teacher's frames with the student's 25 Hz encoder frames.

Frame counts for an utterance of N samples at 16 kHz:

- student: Kaldi fbank with snip_edges=False gives F = (N + 80) // 160 frames at 100 Hz; the
  Conv2dSubsampling front end gives T50 = (F - 7) // 2; the encoder's final ×2 downsampling gives
  T25 = (T50 + 1) // 2 output frames (640 samples each).
- Whisper: the log-mel has M = N // 160 frames; conv2 (stride 2, padding 1) gives W = (M + 1) // 2
  frames at 50 Hz.

Stacking pairs of teacher frames gives W // 2 ≈ N / 640 frames at 25 Hz, while T25 ≈ N / 640 − 1.75:
for every N the teacher has at least as many stacked frames as the student (2·T25 ≤ W; the surplus
is one or two stacked frames), so the surplus is cut from the end. `stack_to_student_frames` also repeats the
teacher's last frame where a teacher runs short (it cannot for Whisper and two frames per student
frame, but can for other groupings), so the target length is always exactly T25.
"""

from __future__ import annotations

import torch

from modeling_mt2kd.heads import stack_teacher_frames
from modeling_mt2kd.lengths import samples_to_output_frames
from modeling_mt2kd.masks import lengths_to_mask

from training_mt2kd.recipe.teachers.base import TeacherTargets

student_num_frames = samples_to_output_frames
"""Student encoder output frames (25 Hz) for `num_samples` `(batch,)` samples at 16 kHz (modeling_mt2kd.lengths)."""


def check_frames_per_student_frame(frames_per_student_frame: int) -> None:
    """Raise a ValueError unless at least one teacher frame is stacked per student frame."""
    if frames_per_student_frame < 1:
        raise ValueError(f"frames_per_student_frame must be >= 1; got {frames_per_student_frame}")


def stack_to_student_frames(
    frames: torch.Tensor, frame_lengths: torch.Tensor, student_lengths: torch.Tensor, frames_per_student_frame: int
) -> TeacherTargets:
    """Stack groups of consecutive teacher frames into one target per student frame.

    Args:
        frames: `(batch, teacher_frames, dim)` teacher frames, valid up to `frame_lengths` `(batch,)`.
        student_lengths: `(batch,)` student frames each target must have.
        frames_per_student_frame: teacher frames per student frame (2 for 50 Hz → 25 Hz).

    Returns:
        `values` `(batch, max(student_lengths), frames_per_student_frame · dim)`, zero past each
        utterance's `lengths` = `student_lengths`. Teacher frames past the student's length are
        dropped; a teacher that runs short has its last valid frame repeated.
    """
    if bool((frame_lengths < 1).any()):
        raise ValueError(
            f"every utterance needs at least one teacher frame; got frame_lengths {frame_lengths.tolist()}"
        )
    max_student = int(student_lengths.max()) if student_lengths.numel() else 0
    values = stack_teacher_frames(frames, max_student, frames_per_student_frame, frame_lengths)
    values = values * lengths_to_mask(student_lengths, max_student)[:, :, None].to(values.dtype)
    return TeacherTargets(values, student_lengths)
