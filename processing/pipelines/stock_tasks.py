"""transformers' own `automatic-speech-recognition` and `audio-classification` pipelines, reading audio the MT2KD way.

The stock pipelines decode a path or file bytes with an `ffmpeg` binary (a fresh machine has none: "ffmpeg was not
found"), refuse channels-last arrays (what `soundfile.read` returns), hand integer PCM to torchaudio's resampler (a
TypeError) and resample odd rates with a kernel of (16000 x rate) weights (12 GB and 25 s for 44,101 Hz). For a model
with an [`MT2KDFeatureExtractor`] these subclasses first read every input with
[`read_stock_pipeline_input`] (soundfile; down-mix; PCM scaling; bounded-memory resampling), then run the stock code
unchanged on a 16 kHz mono waveform. For any other model they are the stock pipelines.

The stock `audio-classification` pipeline puts the whole recording through the model at once: with the MT2KD
encoder (full attention) its memory grows with the square of the duration. For MT2KD models the tagging subclass
therefore runs in overlapping windows, pooled, exactly as `mt2kd-audio-classification` does
([`windowing`]: 30 s windows, 5 s overlap; a recording up to one window long gives the stock result).

`import processing_mt2kd` makes them the implementations of the two stock tasks; a release's `custom_pipelines`
names them too, so `pipeline(task, model=repo, trust_remote_code=True)` gets them without this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from huggingface_hub.utils import httpx  # what the stock pipeline fetches URLs with
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.audio_classification import AudioClassificationPipeline
from transformers.pipelines.automatic_speech_recognition import AutomaticSpeechRecognitionPipeline
from transformers.pipelines.base import ChunkPipeline

from ..feature_extraction_mt2kd import MT2KDFeatureExtractor
from .audio_classification import tag_windows
from .audio_input import read_audio_input, read_stock_pipeline_input
from .windowing import WindowSettings, window_call_parameters, window_model_inputs

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


class MT2KDAudioTaggingPipeline(ChunkPipeline, AudioClassificationPipeline):
    """The stock `audio-classification` pipeline; for MT2KD models, inputs read with soundfile and long recordings
    tagged window by window in bounded memory (see module).

    ```python
    >>> import processing_mt2kd  # makes this the `audio-classification` task
    >>> from transformers import pipeline
    >>> tagger = pipeline("audio-classification", model="path/to/mt2kd-folder")
    >>> tagger({"raw": one_hour, "sampling_rate": 16000}, top_k=2)  # 30 s windows, 5 s overlap, mean-pooled
    [{'score': 0.91, 'label': 'Speech'}, {'score': 0.40, 'label': 'Music'}]
    ```

    Call parameters: the stock ones (`top_k`, `function_to_apply`), and for MT2KD models the window parameters of
    `mt2kd-audio-classification`: `window_length_s`, `window_overlap_s` (defaults 30 and 5), `window_pooling`
    (`"mean"` or `"max"`) and `return_windows` (then `{"labels": [...], "windows": [{"timestamp", "labels"}]}`).
    Other models are run on the whole recording, as transformers does; window parameters are refused for them.
    """

    def _sanitize_parameters(
        self,
        window_length_s: float | None = None,
        window_overlap_s: float | None = None,
        window_pooling: str | None = None,
        return_windows: bool | None = None,
        **stock_parameters: Any,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(**stock_parameters)
        window_preprocess, window_postprocess = window_call_parameters(
            window_length_s, window_overlap_s, window_pooling, return_windows
        )
        if (window_preprocess or window_postprocess) and not _reads_audio_the_mt2kd_way(self.feature_extractor):
            given = {"window_length_s": window_length_s, "window_overlap_s": window_overlap_s,
                     "window_pooling": window_pooling, "return_windows": return_windows}
            raise ValueError(
                f"{', '.join(name for name, value in given.items() if value is not None)}: windows are for MT2KD models; this {type(self.model).__name__} is run on the "
                "whole recording, as transformers' audio-classification pipeline does. Leave the window parameters out"
            )
        return {**preprocess_params, **window_preprocess}, forward_params, {**postprocess_params, **window_postprocess}

    def preprocess(self, inputs: Any, window_settings: WindowSettings = WindowSettings()) -> Iterator[dict[str, Any]]:
        if not _reads_audio_the_mt2kd_way(self.feature_extractor):
            yield {**super().preprocess(inputs), "is_last": True}
            return
        inputs = read_stock_pipeline_input(inputs, self.feature_extractor)
        if isinstance(inputs, str):  # a URL: fetched as the stock pipeline fetches it, decoded with soundfile
            inputs = httpx.get(inputs, follow_redirects=True).content
        waveform = read_audio_input(inputs, self.feature_extractor)
        for window in window_model_inputs(
            waveform, self.feature_extractor, window_settings, self.model.config.inputs_to_logits_ratio
        ):
            if self.dtype is not None:  # as the stock pipeline: features in the model's dtype
                window["input_features"] = window["input_features"].to(self.dtype)
            yield window

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        passed_on = {key: model_inputs.pop(key) for key in list(model_inputs) if key == "is_last" or
                     key.startswith("chunk_")}  # the window position and `is_last`
        return {"logits": super()._forward(model_inputs).logits, **passed_on}

    def postprocess(
        self,
        model_outputs: list[dict[str, Any]],
        top_k: int = 5,
        function_to_apply: str | None = None,
        window_pooling: str = "mean",
        return_windows: bool = False,
    ) -> list[dict[str, Any]] | dict[str, Any]:
        if "chunk_start" not in model_outputs[0]:  # another model: one pass, the stock result
            return super().postprocess(SequenceClassifierOutput(logits=model_outputs[0]["logits"]), top_k,
                                       function_to_apply)
        return tag_windows(
            model_outputs, self.model.config, self.feature_extractor.sampling_rate, top_k, function_to_apply,
            window_pooling, return_windows,
        )


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
