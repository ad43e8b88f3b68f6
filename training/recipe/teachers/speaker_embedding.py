"""Utterance embeddings from any `AutoModelForAudioXVector` as the speaker target."""

from __future__ import annotations

import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioXVector, PreTrainedModel, SequenceFeatureExtractor

from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets


class SpeakerEmbeddingTeacher(Teacher):
    """x-vector embeddings (e.g. WavLM, wav2vec 2.0 or UniSpeech-SAT `...ForXVector`).

    Targets: clip-level `values` `(batch, xvector_output_dim)`, unnormalised (the student's loss
    is 1 − cosine). Utterances go through the model's feature extractor unpadded and are padded
    to the longest; when the extractor returns an attention mask (`return_attention_mask=True`
    in its config, as for WavLM's speaker-verification checkpoints) the model ignores the padding
    and a batched call equals one call per utterance. Checkpoints whose extractor gives no mask
    (group-norm wav2vec 2.0 models) see zero padding, which shifts their embeddings slightly.
    """

    target_key = "speaker"

    def __init__(
        self, model: PreTrainedModel, feature_extractor: SequenceFeatureExtractor, *, name: str = "xvector"
    ) -> None:
        super().__init__(model, name)
        self.feature_extractor = feature_extractor

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        **hub_kwargs,
    ) -> SpeakerEmbeddingTeacher:
        """Load model and feature extractor from a Hub id or folder; `hub_kwargs` go to both."""
        model = AutoModelForAudioXVector.from_pretrained(name_or_path, dtype=dtype, **hub_kwargs)
        feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **hub_kwargs)
        return cls(model, feature_extractor, name=name_or_path).to(device)

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        inputs = self.feature_extractor(
            self._unpadded_arrays(waveforms, waveform_lengths),
            sampling_rate=self.sample_rate,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        with self._model_precision():
            embeddings = self.model(**inputs).embeddings
        return TeacherTargets(embeddings.float())
