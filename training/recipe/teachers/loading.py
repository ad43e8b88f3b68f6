"""`load_teacher`: build any teacher adapter by kind from a Hub id or a local folder."""

from __future__ import annotations

from collections.abc import Callable

from training_mt2kd.recipe.teachers.audio_classification import AudioClassificationTeacher
from training_mt2kd.recipe.teachers.base import Teacher
from training_mt2kd.recipe.teachers.frame_encoder import FrameEncoderTeacher
from training_mt2kd.recipe.teachers.resemblyzer_encoder import ResemblyzerTeacher
from training_mt2kd.recipe.teachers.speaker_embedding import SpeakerEmbeddingTeacher
from training_mt2kd.recipe.teachers.speechbrain_ecapa import SpeechBrainEcapaTeacher
from training_mt2kd.recipe.teachers.whisper import WhisperEncoderTeacher

TEACHER_KINDS: dict[str, Callable[..., Teacher]] = {
    "whisper": WhisperEncoderTeacher.from_pretrained,
    "frame-encoder": FrameEncoderTeacher.from_pretrained,
    "audio-classification": AudioClassificationTeacher.from_pretrained,
    "xvector": SpeakerEmbeddingTeacher.from_pretrained,
    "speechbrain-ecapa": SpeechBrainEcapaTeacher.from_pretrained,
    "resemblyzer": ResemblyzerTeacher.from_pretrained,
}


def load_teacher(kind: str, name_or_path: str, **options) -> Teacher:
    """Load a frozen teacher.

    Args:
        kind: "whisper" or "frame-encoder" (ASR target), "audio-classification" (tagging target),
            "xvector", "speechbrain-ecapa" or "resemblyzer" (speaker target).
        name_or_path: Hub id (e.g. "openai/whisper-large-v3") or local folder; for "resemblyzer", a
            `pretrained.pt`, a folder holding one, or "resemblyzer" (the installed package's).
        options: passed to the adapter's `from_pretrained`: `device` for all; `layer`,
            `frames_per_student_frame` for Whisper; `frames_per_student_frame` for frame-encoder;
            `labels`, `missing_label_probability` for audio classification; Hub arguments
            (`revision`, `cache_dir`, `local_files_only`, ...) for the transformers adapters.
    """
    if kind not in TEACHER_KINDS:
        raise ValueError(f"unknown teacher kind {kind!r}; choose one of {sorted(TEACHER_KINDS)}")
    return TEACHER_KINDS[kind](name_or_path, **options)
