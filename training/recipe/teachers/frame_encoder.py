"""Frame-level hidden states of any `AutoModel` encoder as the ASR distillation target.

The paper distils Whisper's encoder; this adapter distils any encoder that returns
`last_hidden_state` with its output `attention_mask`, e.g. an MT2KD model trained for ASR (the demo's
tiny ASR teacher, at the student's own 25 Hz).
"""

from __future__ import annotations

import torch
from transformers import AutoFeatureExtractor, AutoModel, PreTrainedModel, SequenceFeatureExtractor

from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets
from training_mt2kd.recipe.teachers.frame_alignment import check_frames_per_student_frame, stack_to_student_frames, student_num_frames


class FrameEncoderTeacher(Teacher):
    """Encoder frames, grouped `frames_per_student_frame` at a time into one 25 Hz student frame.

    Targets: `values` `(batch, T25, frames_per_student_frame · hidden)` with `lengths` = the
    student's T25 per utterance (surplus teacher frames are cut, a short teacher's last frame is
    repeated; see `frame_alignment`). Utterances go through the model's feature extractor unpadded
    and are padded to the longest; the model must return its output `attention_mask` so that padded
    frames are known. Its target key is "whisper" (the frame-level ASR target), so the student's
    `whisper_dim` is the encoder's width and its `teacher_frames_per_frame` must equal
    `frames_per_student_frame`.

    Args:
        model: the encoder (`AutoModel`), returning `last_hidden_state` `(batch, frames, hidden)`
            and `attention_mask` `(batch, frames)`.
        feature_extractor: its feature extractor (returning an attention mask).
        frames_per_student_frame: encoder frames per 25 Hz student frame (1 for a 25 Hz MT2KD
            encoder, 2 for a 50 Hz one).
    """

    target_key = "whisper"

    def __init__(
        self,
        model: PreTrainedModel,
        feature_extractor: SequenceFeatureExtractor,
        *,
        name: str = "frame-encoder",
        frames_per_student_frame: int = 1,
    ) -> None:
        check_frames_per_student_frame(frames_per_student_frame)
        super().__init__(model, name)
        self.feature_extractor = feature_extractor
        self.frames_per_student_frame = frames_per_student_frame

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        frames_per_student_frame: int = 1,
        **hub_kwargs,
    ) -> FrameEncoderTeacher:
        """Load the encoder and its feature extractor from a Hub id or folder; `hub_kwargs` go to both."""
        model = AutoModel.from_pretrained(name_or_path, dtype=dtype, **hub_kwargs)
        feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **hub_kwargs)
        teacher = cls(model, feature_extractor, name=name_or_path, frames_per_student_frame=frames_per_student_frame)
        return teacher.to(device)

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        student_lengths = student_num_frames(waveform_lengths)
        if bool((student_lengths < 1).any()):
            index = int((student_lengths < 1).nonzero()[0])
            raise ValueError(
                f"utterance {index} has {int(waveform_lengths[index])} samples, too short for one student frame; "
                "filter out utterances shorter than 1360 samples (85 ms at 16 kHz)"
            )
        inputs = self.feature_extractor(
            self._unpadded_arrays(waveforms, waveform_lengths),
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        ).to(self.device)
        with self._model_precision():
            outputs = self.model(**inputs)
        frame_mask = getattr(outputs, "attention_mask", None)
        if frame_mask is None:
            raise ValueError(
                f"{type(self.model).__name__} returns no output attention_mask, so its padded frames are unknown; "
                "use an encoder whose output carries one (e.g. MT2KDModel), or run utterances one at a time"
            )
        frames = outputs.last_hidden_state.float()
        return stack_to_student_frames(
            frames, frame_mask.sum(dim=1).long(), student_lengths, self.frames_per_student_frame
        )
