"""Register the MT2KD pipelines with transformers' `PIPELINE_REGISTRY`: `pipeline(task, model=...)` builds them."""

from __future__ import annotations

from transformers import Pipeline, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY

from .multitask import MT2KDMultiTaskPipeline
from .speaker_verification import MT2KDSpeakerVerificationPipeline
from .transducer_asr import MT2KDTransducerASRPipeline

__all__ = ["MULTITASK_TASK", "SPEAKER_VERIFICATION_TASK", "TRANSDUCER_ASR_TASK", "register_pipelines"]

TRANSDUCER_ASR_TASK = "mt2kd-transducer-asr"
SPEAKER_VERIFICATION_TASK = "mt2kd-speaker-verification"
MULTITASK_TASK = "mt2kd-multitask"


def register_pipelines(
    transducer_model: type[PreTrainedModel],
    speaker_model: type[PreTrainedModel],
    multitask_model: type[PreTrainedModel],
) -> None:
    """Register the three MT2KD tasks (safe to call again). `modeling_mt2kd` calls this on import with its classes.

    Args:
        transducer_model: loads a folder for `"mt2kd-transducer-asr"` (`MT2KDForRNNT`).
        speaker_model: loads a folder for `"mt2kd-speaker-verification"` (`MT2KDForXVector`).
        multitask_model: loads a folder for `"mt2kd-multitask"` (`MT2KDForMultiTask`).
    """
    tasks: tuple[tuple[str, type[Pipeline], type[PreTrainedModel]], ...] = (
        (TRANSDUCER_ASR_TASK, MT2KDTransducerASRPipeline, transducer_model),
        (SPEAKER_VERIFICATION_TASK, MT2KDSpeakerVerificationPipeline, speaker_model),
        (MULTITASK_TASK, MT2KDMultiTaskPipeline, multitask_model),
    )
    for task, pipeline_class, model_class in tasks:
        registered = PIPELINE_REGISTRY.supported_tasks.get(task)
        if registered is not None and registered["impl"] is pipeline_class and registered["pt"] == (model_class,):
            continue  # re-registering would log an "Overwriting pipeline" warning
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=model_class, type="audio")
