"""Frozen teacher models behind one adapter interface, producing stage-1 distillation targets."""

from .audio_classification import AudioClassificationTeacher
from .base import Teacher, TeacherTargets
from .frame_alignment import stack_to_student_frames, student_num_frames
from .frame_encoder import FrameEncoderTeacher
from .loading import TEACHER_KINDS, load_teacher
from .resemblyzer_encoder import GE2ESpeakerEncoder, ResemblyzerTeacher
from .speaker_embedding import SpeakerEmbeddingTeacher
from .speechbrain_ecapa import SpeechBrainEcapaTeacher
from .whisper import WhisperEncoderTeacher

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
