"""Registration of the MT2KD front end and pipelines with transformers (the models register themselves).

`AUTO_FRONT_END_CLASSES` is the one list of which front-end class answers which Auto class; the remote-code
`auto_map` of a release reads it too.
"""

from __future__ import annotations

import transformers

import modeling_mt2kd
from configuration_mt2kd import MT2KDConfig

from .feature_extraction_mt2kd import MT2KDFeatureExtractor
from .pipelines.registration import register_pipelines
from .pipelines.stock_tasks import register_stock_task_pipelines
from .processing_mt2kd import MT2KDProcessor
from .tokenization_mt2kd import MT2KDTokenizer

__all__ = ["AUTO_FRONT_END_CLASSES", "register_processing_auto_classes"]

AUTO_FRONT_END_CLASSES = {
    "AutoFeatureExtractor": MT2KDFeatureExtractor,
    "AutoTokenizer": MT2KDTokenizer,
    "AutoProcessor": MT2KDProcessor,
}


def register_processing_auto_classes() -> None:
    """Register the models (via `modeling_mt2kd`), the front end and the MT2KD pipelines (idempotent).

    After this, `pipeline("automatic-speech-recognition" | "audio-classification", model=folder)` use the CTC and
    tagging heads (through subclasses of the stock pipelines that read audio files with soundfile, no ffmpeg), and
    the `mt2kd-*` tasks of `processing_mt2kd.pipelines` are tasks.
    """
    modeling_mt2kd.register_auto_classes()
    transformers.AutoFeatureExtractor.register(MT2KDConfig, MT2KDFeatureExtractor, exist_ok=True)
    transformers.AutoTokenizer.register(MT2KDConfig, tokenizer_class=MT2KDTokenizer, exist_ok=True)
    transformers.AutoProcessor.register(MT2KDConfig, MT2KDProcessor, exist_ok=True)
    register_pipelines()
    register_stock_task_pipelines()
