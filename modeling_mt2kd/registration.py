"""The MT2KD model classes by transformers Auto class, and their registration.

`AUTO_MODEL_CLASSES` is the one list of which class answers which Auto class: registration here, the
remote-code `auto_map` of a release and the pipelines (which load models through the Auto classes) all
read it. The front end and the pipelines are registered by `processing_mt2kd`.
"""

import transformers

from configuration_mt2kd import MT2KDConfig

from .modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDModel,
    MT2KDPreTrainedModel,
)

__all__ = ["AUTO_MODEL_CLASSES", "register_auto_classes"]

# transformers has no multi-task Auto class: AutoModelForPreTraining ("the model with all its heads") serves
# MT2KDForMultiTask, so that the multi-task pipeline can load it (also from remote code).
AUTO_MODEL_CLASSES: dict[str, type[MT2KDPreTrainedModel]] = {
    "AutoModel": MT2KDModel,
    "AutoModelForCTC": MT2KDForCTC,
    "AutoModelForRNNT": MT2KDForRNNT,
    "AutoModelForAudioClassification": MT2KDForAudioClassification,
    "AutoModelForAudioXVector": MT2KDForXVector,
    "AutoModelForPreTraining": MT2KDForMultiTask,
}


def register_auto_classes() -> None:
    """Register `MT2KDConfig` with AutoConfig and each model class with its Auto class (idempotent)."""
    transformers.AutoConfig.register(MT2KDConfig.model_type, MT2KDConfig, exist_ok=True)
    for auto_class_name, model_class in AUTO_MODEL_CLASSES.items():
        getattr(transformers, auto_class_name).register(MT2KDConfig, model_class, exist_ok=True)
