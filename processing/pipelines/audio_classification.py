"""Audio tagging of recordings of any length with the MT2KD tagging head, in overlapping windows ([`windowing`])."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline

from .audio_input import AudioInput, read_audio_input
from .chunking import AudioChunk
from .windowing import WindowSettings, pool_windows, window_call_parameters, window_model_inputs, window_timestamp

__all__ = ["CLASSIFICATION_FUNCTIONS", "MT2KDAudioClassificationPipeline", "ranked_labels", "tag_windows"]

CLASSIFICATION_FUNCTIONS = ("sigmoid", "softmax", "none")
DEFAULT_TOP_K = 5
# Tells "top_k not passed" (keep the value set at construction, else DEFAULT_TOP_K) from `top_k=None` (every label).
_NOT_GIVEN = object()


class MT2KDAudioClassificationPipeline(ChunkPipeline):
    r"""The `audio-classification` pipeline for MT2KD folders, in bounded memory for recordings of any length.

    ```python
    >>> import processing_mt2kd  # registers the task
    >>> from transformers import pipeline
    >>> tagger = pipeline("mt2kd-audio-classification", model="path/to/mt2kd-folder")
    >>> tagger("street.wav", top_k=2)  # the stock pipeline's output
    [{'score': 0.91, 'label': 'Speech'}, {'score': 0.40, 'label': 'Vehicle'}]
    >>> tagger("two_hours.flac", window_pooling="max", return_windows=True)
    {'labels': [...], 'windows': [{'timestamp': (0.0, 30.0), 'labels': [...]}, ...]}
    ```

    Called like the stock `audio-classification` pipeline (`top_k`, `function_to_apply`), with the same results for
    a recording up to one window long. The stock pipeline (`pipeline("audio-classification", model=folder)`) also
    works with MT2KD folders but puts the whole recording through the encoder at once: its memory grows with the
    square of the duration. This one reads every input the MT2KD pipelines read (paths, bytes, any rate, channels,
    integer PCM) and tags long recordings window by window (see `processing_mt2kd.pipelines.windowing`).

    Call parameters:
        top_k: labels returned, highest score first (default 5; `None` = every label).
        function_to_apply: `"sigmoid"`, `"softmax"` or `"none"` (default: from `config.problem_type`, sigmoid for
            the multi-label tagging head).
        window_length_s, window_overlap_s: window size and overlap in seconds (defaults 30 and 5).
        window_pooling: `"mean"` (default: the windows' logits averaged, weighted by the audio each stands for) or
            `"max"` (each label's highest score in any window: short events in long recordings).
        return_windows: also return each window's labels: the result becomes `{"labels": [...], "windows":
            [{"timestamp": (start_s, end_s), "labels": [...]}]}`.

    Returns:
        `[{"score", "label"}]`, highest score first (or the dict above with `return_windows=True`).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: undecodable, empty, NaN or too short audio; a bad parameter.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def _sanitize_parameters(
        self,
        top_k: int | None = _NOT_GIVEN,
        function_to_apply: str | None = None,
        window_length_s: float | None = None,
        window_overlap_s: float | None = None,
        window_pooling: str | None = None,
        return_windows: bool | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, postprocess_params = window_call_parameters(
            window_length_s, window_overlap_s, window_pooling, return_windows
        )
        if top_k is not _NOT_GIVEN:
            num_labels = self.model.config.num_labels
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(
                    f"top_k must be a whole number >= 1, or None for all {num_labels} labels; got {top_k!r}"
                )
            postprocess_params["top_k"] = num_labels if top_k is None else top_k
        if function_to_apply is not None:
            if function_to_apply not in CLASSIFICATION_FUNCTIONS:
                raise ValueError(
                    f"function_to_apply must be one of {CLASSIFICATION_FUNCTIONS}; got {function_to_apply!r}"
                )
            postprocess_params["function_to_apply"] = function_to_apply
        return preprocess_params, {}, postprocess_params

    def preprocess(
        self, inputs: AudioInput, window_settings: WindowSettings = WindowSettings()
    ) -> Iterator[dict[str, Any]]:
        waveform = read_audio_input(inputs, self.feature_extractor)
        yield from window_model_inputs(
            waveform, self.feature_extractor, window_settings, self.model.config.inputs_to_logits_ratio
        )

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        logits = self.model(
            input_features=model_inputs.pop("input_features"), attention_mask=model_inputs.pop("attention_mask")
        ).logits
        return {"logits": logits, **model_inputs}  # the window positions and `is_last` pass through

    def postprocess(
        self,
        model_outputs: list[dict[str, Any]],
        top_k: int = DEFAULT_TOP_K,
        function_to_apply: str | None = None,
        window_pooling: str = "mean",
        return_windows: bool = False,
    ) -> list[dict[str, Any]] | dict[str, Any]:
        return tag_windows(
            model_outputs, self.model.config, self.feature_extractor.sampling_rate, top_k, function_to_apply,
            window_pooling, return_windows,
        )


def tag_windows(
    model_outputs: list[dict[str, Any]],
    config: Any,
    sampling_rate: int,
    top_k: int = DEFAULT_TOP_K,
    function_to_apply: str | None = None,
    window_pooling: str = "mean",
    return_windows: bool = False,
) -> list[dict[str, Any]] | dict[str, Any]:
    """The labels of one recording from its windows' outputs (`"logits"` `(1, num_labels)` and the window position).

    Args:
        model_outputs: one dict per window, in order.
        config: the model's config (`id2label`, `problem_type`).
        sampling_rate: of the audio, for the windows' timestamps.
        top_k, function_to_apply, window_pooling, return_windows: as the tagging pipelines' call parameters.

    Returns:
        `[{"score", "label"}]`, highest score first; with `return_windows`, `{"labels": [...], "windows":
        [{"timestamp": (start_s, end_s), "labels": [...]}]}`.
    """
    function_to_apply = function_to_apply or _default_function(config.problem_type)
    windows = [AudioChunk.from_tensors(output) for output in model_outputs]
    logits = [output["logits"].reshape(-1).float() for output in model_outputs]
    if window_pooling == "max":
        scores = pool_windows([_scores(value, function_to_apply) for value in logits], windows, "max")
    else:
        scores = _scores(pool_windows(logits, windows, "mean"), function_to_apply)
    labels = ranked_labels(scores, config.id2label, top_k)
    if not return_windows:
        return labels
    return {
        "labels": labels,
        "windows": [
            {
                "timestamp": window_timestamp(window, sampling_rate),
                "labels": ranked_labels(_scores(value, function_to_apply), config.id2label, top_k),
            }
            for window, value in zip(windows, logits)
        ],
    }


def ranked_labels(scores: torch.Tensor, id2label: dict[int, str], top_k: int) -> list[dict[str, Any]]:
    """The `top_k` highest of `(num_labels,)` scores as `[{"score", "label"}]`, highest first."""
    values, label_ids = scores.topk(min(top_k, len(scores)))
    return [
        {"score": score, "label": id2label[label_id]} for score, label_id in zip(values.tolist(), label_ids.tolist())
    ]


def _default_function(problem_type: str | None) -> str:
    """The stock pipeline's rule: sigmoid for multi-label, none for regression, else softmax."""
    if problem_type == "multi_label_classification":
        return "sigmoid"
    return "none" if problem_type == "regression" else "softmax"


def _scores(logits: torch.Tensor, function_to_apply: str) -> torch.Tensor:
    if function_to_apply == "sigmoid":
        return logits.sigmoid()
    if function_to_apply == "softmax":
        return logits.softmax(dim=-1)
    return logits
