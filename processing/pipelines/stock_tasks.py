"""transformers' own `automatic-speech-recognition` and `audio-classification` pipelines, reading audio the MT2KD way.

The stock pipelines decode a path or file bytes with an `ffmpeg` binary (a fresh machine has none: "ffmpeg was not
found"), refuse channels-last arrays (what `soundfile.read` returns), hand integer PCM to torchaudio's resampler (a
TypeError) and resample odd rates with a kernel of (16000 x rate) weights (12 GB and 25 s for 44,101 Hz). For a model
with an [`MT2KDFeatureExtractor`] these subclasses first read every input with
[`read_stock_pipeline_input`] (soundfile; down-mix; PCM scaling; bounded-memory resampling), then run the stock code
unchanged on a 16 kHz mono waveform. For any other model they are the stock pipelines.

`import processing_mt2kd` makes them the implementations of the two stock tasks; a release's `custom_pipelines`
names them too, so `pipeline(task, model=repo, trust_remote_code=True)` gets them without this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.audio_classification import AudioClassificationPipeline
from transformers.pipelines.automatic_speech_recognition import AutomaticSpeechRecognitionPipeline

from ..feature_extraction_mt2kd import MT2KDFeatureExtractor
from .audio_input import read_stock_pipeline_input

__all__ = [
    "MT2KDAudioTaggingPipeline",
    "MT2KDSpeechRecognitionPipeline",
    "STOCK_TASK_PIPELINES",
    "register_stock_task_pipelines",
]


def _reads_audio_the_mt2kd_way(feature_extractor: Any) -> bool:
    # By name as well: a release's remote-code feature extractor is a copy of the class, not the class itself.
    return isinstance(feature_extractor, MT2KDFeatureExtractor) or (
        type(feature_extractor).__name__ == MT2KDFeatureExtractor.__name__
        and hasattr(feature_extractor, "_prepare_waveform")
    )


class MT2KDSpeechRecognitionPipeline(AutomaticSpeechRecognitionPipeline):
    """The stock `automatic-speech-recognition` pipeline; MT2KD models' inputs are read with soundfile (see module)."""

    def preprocess(self, inputs: Any, chunk_length_s: float = 0, stride_length_s: Any = None) -> Iterator[dict]:
        if _reads_audio_the_mt2kd_way(self.feature_extractor):
            inputs = read_stock_pipeline_input(inputs, self.feature_extractor)
        yield from super().preprocess(inputs, chunk_length_s=chunk_length_s, stride_length_s=stride_length_s)


class MT2KDAudioTaggingPipeline(AudioClassificationPipeline):
    """The stock `audio-classification` pipeline; MT2KD models' inputs are read with soundfile (see module).

    The whole recording goes through the encoder at once, as in the stock pipeline; for long recordings use the
    windowed `"mt2kd-audio-classification"` task.
    """

    def preprocess(self, inputs: Any) -> Any:
        if _reads_audio_the_mt2kd_way(self.feature_extractor):
            inputs = read_stock_pipeline_input(inputs, self.feature_extractor)
        return super().preprocess(inputs)


STOCK_TASK_PIPELINES = {
    "automatic-speech-recognition": MT2KDSpeechRecognitionPipeline,
    "audio-classification": MT2KDAudioTaggingPipeline,
}


def register_stock_task_pipelines() -> None:
    """Make the subclasses the implementations of the two stock tasks, keeping the tasks' model classes and
    defaults (idempotent)."""
    for task, pipeline_class in STOCK_TASK_PIPELINES.items():
        entry = PIPELINE_REGISTRY.supported_tasks[task]
        if entry["impl"] is not pipeline_class:
            PIPELINE_REGISTRY.supported_tasks[task] = {**entry, "impl": pipeline_class}
