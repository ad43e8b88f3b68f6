"""Register the MT2KD pipelines with transformers' `PIPELINE_REGISTRY`: `pipeline(task, model=...)` builds them."""

from __future__ import annotations

from transformers import (
    AutoModelForAudioClassification,
    AutoModelForAudioXVector,
    AutoModelForPreTraining,
    AutoModelForRNNT,
    Pipeline,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .audio_classification import MT2KDAudioClassificationPipeline
from .multitask import MT2KDMultiTaskPipeline
from .speaker_verification import MT2KDSpeakerVerificationPipeline
from .streaming_asr import MT2KDStreamingASRPipeline
from .transducer_asr import MT2KDTransducerASRPipeline

__all__ = [
    "AUDIO_CLASSIFICATION_TASK",
    "MULTITASK_TASK",
    "SPEAKER_VERIFICATION_TASK",
    "STREAMING_ASR_TASK",
    "TRANSDUCER_ASR_TASK",
    "register_pipelines",
]

TRANSDUCER_ASR_TASK = "mt2kd-transducer-asr"
STREAMING_ASR_TASK = "mt2kd-streaming-asr"
SPEAKER_VERIFICATION_TASK = "mt2kd-speaker-verification"
MULTITASK_TASK = "mt2kd-multitask"
# The stock "audio-classification" task stays transformers' own (whole recording in one pass); this one windows.
AUDIO_CLASSIFICATION_TASK = "mt2kd-audio-classification"


def register_pipelines() -> None:
    """Register the four MT2KD tasks (safe to call again); each loads its model through an Auto class, so the
    model classes registered by `modeling_mt2kd` (or a release's remote code) serve them."""
    tasks: tuple[tuple[str, type[Pipeline], type], ...] = (
        (TRANSDUCER_ASR_TASK, MT2KDTransducerASRPipeline, AutoModelForRNNT),
        (STREAMING_ASR_TASK, MT2KDStreamingASRPipeline, AutoModelForRNNT),
        (SPEAKER_VERIFICATION_TASK, MT2KDSpeakerVerificationPipeline, AutoModelForAudioXVector),
        (MULTITASK_TASK, MT2KDMultiTaskPipeline, AutoModelForPreTraining),
        (AUDIO_CLASSIFICATION_TASK, MT2KDAudioClassificationPipeline, AutoModelForAudioClassification),
    )
    for task, pipeline_class, auto_class in tasks:
        registered = PIPELINE_REGISTRY.supported_tasks.get(task)
        if registered is not None and registered["impl"] is pipeline_class and registered["pt"] == (auto_class,):
            continue  # re-registering would log an "Overwriting pipeline" warning
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=auto_class, type="audio")
