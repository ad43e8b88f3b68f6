"""The MT2KD model classes by transformers Auto class, and their registration.

`AUTO_MODEL_CLASSES` is the one list of which class answers which Auto class: registration here, the
remote-code `auto_map` of a release and the pipelines (which load models through the Auto classes) all
read it. The front end and the pipelines are registered by `processing_mt2kd`.

Registration also makes `AutoConfig.from_pretrained` and these Auto classes' `from_pretrained` refuse a preset name
("mt2kd-66m") that is neither a local folder nor a cached Hub repository at once, with what to do
([`refuse_missing_preset`], as the model classes' own `from_pretrained` does): transformers would otherwise ask the
Hub for a repository that does not exist (~28 s of retries without a network) before any MT2KD code runs.
"""

import functools
from typing import Any

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
    refuse_missing_preset,
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
    for auto_class_name in ("AutoConfig", *AUTO_MODEL_CLASSES):
        auto_class = getattr(transformers, auto_class_name)
        if not getattr(auto_class.from_pretrained, "refuses_missing_presets", False):
            auto_class.from_pretrained = _refusing_missing_presets(auto_class.from_pretrained.__func__)


def _refusing_missing_presets(from_pretrained: Any) -> classmethod:
    """An Auto class's `from_pretrained` that first calls [`refuse_missing_preset`] (no Hub access), then itself."""

    @functools.wraps(from_pretrained)
    def checked(cls, pretrained_model_name_or_path, *args, **kwargs):
        refuse_missing_preset(pretrained_model_name_or_path, kwargs.get("cache_dir"))
        return from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs)

    checked.refuses_missing_presets = True
    return classmethod(checked)
