"""The paper's speaker teacher: SpeechBrain ECAPA-TDNN (`speechbrain/spkrec-ecapa-voxceleb`).

SpeechBrain is optional (`pip install mt2kd[teachers]`) and imported only when this teacher is loaded.
"""

from __future__ import annotations

import torch

from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets

INSTALL_HINT = "the SpeechBrain ECAPA teacher needs speechbrain; install it with `pip install mt2kd[teachers]`"


class SpeechBrainEcapaTeacher(Teacher):
    """ECAPA-TDNN utterance embeddings, `values` `(batch, 192)`; SpeechBrain's feature
    normalisation and attentive pooling use the utterance lengths, so padding is ignored.

    Args:
        classifier: a loaded `speechbrain.inference.speaker.EncoderClassifier`.
    """

    target_key = "speaker"

    def __init__(self, classifier, *, name: str = "speechbrain-ecapa") -> None:
        super().__init__(classifier.mods, name)
        self.classifier = classifier

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = "speechbrain/spkrec-ecapa-voxceleb",
        *,
        device: torch.device | str = "cpu",
        savedir: str | None = None,
    ) -> SpeechBrainEcapaTeacher:
        """Load from a Hub id or a folder with SpeechBrain's `hyperparams.yaml`; `savedir` is where
        SpeechBrain keeps its copy (its default when None)."""
        try:
            from speechbrain.inference.speaker import EncoderClassifier
        except ImportError as error:
            raise ImportError(INSTALL_HINT) from error
        classifier = EncoderClassifier.from_hparams(
            source=name_or_path, savedir=savedir, run_opts={"device": str(device)}
        )
        return cls(classifier, name=name_or_path)

    def to(self, device: torch.device | str) -> SpeechBrainEcapaTeacher:
        super().to(device)
        # encode_batch moves its inputs to `classifier.device`.
        self.classifier.device = str(device)
        return self

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        relative_lengths = waveform_lengths.float() / waveforms.shape[1]
        with self._model_precision():
            embeddings = self.classifier.encode_batch(waveforms, relative_lengths)
        return TeacherTargets(embeddings.squeeze(1).float())
