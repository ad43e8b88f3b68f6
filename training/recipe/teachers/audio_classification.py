"""Clip-level tag probabilities from any `AutoModelForAudioClassification` as the tagging target."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    PreTrainedModel,
    SequenceFeatureExtractor,
)

from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets


class AudioClassificationTeacher(Teacher):
    """Sigmoid probabilities of an audio classifier (e.g. AST on AudioSet), in the student's label order.

    Targets: clip-level `values` `(batch, num_student_labels)` in [0, 1]. The teacher's outputs
    are matched to `labels` by exact label name (`config.id2label`), so a teacher with another
    class order, or a superset of classes, still fills each student class with the right
    probability. A student label the teacher lacks is an error unless `missing_label_probability`
    gives the value to fill it with (e.g. 0.0).

    Each utterance goes through the model's own feature extractor unpadded (AST pads or cuts
    every clip to its fixed 10.24 s itself); the extractor's attention mask is passed on when it
    makes one.

    Args:
        model: the audio classifier.
        feature_extractor: its feature extractor.
        labels: the student's label names, in the student's order; None keeps the teacher's order.
        missing_label_probability: fill value for student labels the teacher lacks; None = error.
    """

    target_key = "tagging"

    def __init__(
        self,
        model: PreTrainedModel,
        feature_extractor: SequenceFeatureExtractor,
        *,
        name: str = "audio-classification",
        labels: Sequence[str] | None = None,
        missing_label_probability: float | None = None,
    ) -> None:
        super().__init__(model, name)
        self.feature_extractor = feature_extractor
        teacher_labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
        self.labels = list(teacher_labels if labels is None else labels)
        self.missing_label_probability = missing_label_probability
        self._teacher_index, self._missing = self._label_mapping(teacher_labels, self.labels, missing_label_probability)

    @staticmethod
    def _label_mapping(
        teacher_labels: list[str], student_labels: list[str], missing_label_probability: float | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher column per student label (0 where missing) and the `(num_student_labels,)` missing mask."""
        duplicated = sorted({label for label in teacher_labels if teacher_labels.count(label) > 1})
        if duplicated:
            raise ValueError(
                f"the teacher's id2label names {duplicated[:5]} more than once, so labels cannot be matched by name"
            )
        column = {label: index for index, label in enumerate(teacher_labels)}
        missing = [label for label in student_labels if label not in column]
        if missing and missing_label_probability is None:
            raise ValueError(
                f"{len(missing)} of {len(student_labels)} student labels are not among the teacher's "
                f"{len(teacher_labels)} labels, e.g. {missing[:5]}; check the label list, or pass "
                "missing_label_probability=0.0 to fill them with a constant"
            )
        teacher_index = torch.tensor([column.get(label, 0) for label in student_labels], dtype=torch.long)
        missing_mask = torch.tensor([label not in column for label in student_labels], dtype=torch.bool)
        return teacher_index, missing_mask

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        labels: Sequence[str] | None = None,
        missing_label_probability: float | None = None,
        **hub_kwargs,
    ) -> AudioClassificationTeacher:
        """Load model and feature extractor from a Hub id or folder; `hub_kwargs` go to both."""
        model = AutoModelForAudioClassification.from_pretrained(name_or_path, dtype=dtype, **hub_kwargs)
        feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **hub_kwargs)
        teacher = cls(
            model,
            feature_extractor,
            name=name_or_path,
            labels=labels,
            missing_label_probability=missing_label_probability,
        )
        return teacher.to(device)

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        inputs = self.feature_extractor(
            self._unpadded_arrays(waveforms, waveform_lengths),
            sampling_rate=self.sample_rate,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        with self._model_precision():
            logits = self.model(**inputs).logits.float()
        probabilities = torch.sigmoid(logits)[:, self._teacher_index.to(self.device)]
        if self._missing.any():
            probabilities[:, self._missing.to(self.device)] = self.missing_label_probability
        return TeacherTargets(probabilities)
