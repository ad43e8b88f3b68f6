"""Registration of the MT2KD classes with the transformers Auto classes and pipelines."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioXVector,
    AutoModelForCTC,
    AutoModelForPreTraining,
    AutoModelForRNNT,
)

from configuration_mt2kd import MT2KDConfig
from processing_mt2kd import register_processing_auto_classes
from processing_mt2kd.pipelines import register_pipelines

from .modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDModel,
)

_AUTO_MODELS = (
    (AutoModel, MT2KDModel),
    (AutoModelForCTC, MT2KDForCTC),
    (AutoModelForAudioClassification, MT2KDForAudioClassification),
    (AutoModelForAudioXVector, MT2KDForXVector),
    # The same mapping as the remote-code bundle's `custom_pipelines` (transformers has no
    # multi-task Auto class; pre-training is the closest).
    (AutoModelForRNNT, MT2KDForRNNT),
    (AutoModelForPreTraining, MT2KDForMultiTask),
)


def register_auto_classes() -> None:
    """Register config, models, the front end (feature extractor, tokenizer, processor) and the MT2KD pipelines
    (idempotent).

    After this, `pipeline("automatic-speech-recognition" | "audio-classification", model=folder)` use the CTC and
    tagging heads, and `"mt2kd-transducer-asr"`, `"mt2kd-speaker-verification"` and `"mt2kd-multitask"` are tasks.
    """
    AutoConfig.register(MT2KDConfig.model_type, MT2KDConfig, exist_ok=True)
    for auto_class, model_class in _AUTO_MODELS:
        auto_class.register(MT2KDConfig, model_class, exist_ok=True)
    register_processing_auto_classes()
    register_pipelines(
        transducer_model=MT2KDForRNNT,
        speaker_model=MT2KDForXVector,
        multitask_model=MT2KDForMultiTask,
    )
