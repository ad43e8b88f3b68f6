"""Register the MT2KD front end with AutoFeatureExtractor, AutoTokenizer and AutoProcessor."""

from __future__ import annotations

from configuration_mt2kd import MT2KDConfig
from transformers import AutoFeatureExtractor, AutoProcessor, AutoTokenizer

from .feature_extraction_mt2kd import MT2KDFeatureExtractor
from .processing_mt2kd import MT2KDProcessor
from .tokenization_mt2kd import MT2KDTokenizer

__all__ = ["register_processing_auto_classes"]


def register_processing_auto_classes() -> None:
    """Map `MT2KDConfig` to the MT2KD feature extractor, tokenizer and processor in the Auto classes.

    Safe to call any number of times. AutoConfig itself (model type "mt2kd") is registered by `modeling_mt2kd`.
    """
    AutoFeatureExtractor.register(MT2KDConfig, MT2KDFeatureExtractor, exist_ok=True)
    AutoTokenizer.register(MT2KDConfig, tokenizer_class=MT2KDTokenizer, exist_ok=True)
    AutoProcessor.register(MT2KDConfig, MT2KDProcessor, exist_ok=True)
