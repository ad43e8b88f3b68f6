"""Frozen teacher models behind one adapter interface, producing stage-1 distillation targets."""

from training_mt2kd.recipe.teachers.audio_classification import AudioClassificationTeacher
from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets
from training_mt2kd.recipe.teachers.frame_alignment import stack_to_student_frames, student_num_frames
from training_mt2kd.recipe.teachers.frame_encoder import FrameEncoderTeacher
from training_mt2kd.recipe.teachers.loading import TEACHER_KINDS, load_teacher
from training_mt2kd.recipe.teachers.resemblyzer_encoder import GE2ESpeakerEncoder, ResemblyzerTeacher
from training_mt2kd.recipe.teachers.speaker_embedding import SpeakerEmbeddingTeacher
from training_mt2kd.recipe.teachers.speechbrain_ecapa import SpeechBrainEcapaTeacher
from training_mt2kd.recipe.teachers.whisper import WhisperEncoderTeacher

__all__ = [
    "TEACHER_KINDS",
    "AudioClassificationTeacher",
    "FrameEncoderTeacher",
    "GE2ESpeakerEncoder",
    "ResemblyzerTeacher",
    "SpeakerEmbeddingTeacher",
    "SpeechBrainEcapaTeacher",
    "Teacher",
    "TeacherTargets",
    "WhisperEncoderTeacher",
    "load_teacher",
    "stack_to_student_frames",
    "student_num_frames",
]
