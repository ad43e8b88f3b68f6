"""Speaker verification with the MT2KD speaker head: embed recordings, score pairs by cosine, decide, score trials."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.utils import logging

from .audio_input import AudioInput, read_audio_input
from .chunking import AudioChunk
from .speaker_scoring import cosine_scores
from .speaker_threshold import NO_THRESHOLD_MESSAGE, read_calibrated_threshold
from .trial_list import Trial, read_trial_list
from .windowing import WindowSettings, pool_windows, window_call_parameters, window_model_inputs, window_timestamp

__all__ = ["MT2KDSpeakerVerificationPipeline"]

logger = logging.get_logger(__name__)

# A trial: (enrolment, test) or (enrolment, test, is_target), or a `Trial` read from a trial list.
TrialInput = Trial | tuple[AudioInput, AudioInput] | tuple[AudioInput, AudioInput, bool]


class MT2KDSpeakerVerificationPipeline(ChunkPipeline):
    r"""Speaker embeddings and verification decisions from an `AutoModelForAudioXVector` ([`MT2KDForXVector`]).

    ```python
    >>> import processing_mt2kd  # registers the task
    >>> from transformers import pipeline
    >>> verifier = pipeline("mt2kd-speaker-verification", model="path/to/mt2kd-folder")
    >>> verifier("a.wav")["embedding"].shape  # calling the pipeline embeds
    (192,)
    >>> verifier.embed(["a.wav", "b.wav", "c.wav"], batch_size=8).shape
    (3, 192)
    >>> verifier.verify("a.wav", "b.wav")  # at the threshold calibrated on the folder's dev trials
    {'score': 0.71, 'same_speaker': True, 'threshold': 0.43}
    >>> verifier.score_trials("trials.txt", batch_size=16)  # lines "enrolment test label"
    [{'enrollment': 'a.wav', 'test': 'b.wav', 'score': 0.71, 'same_speaker': True, 'is_target': True}, ...]
    ```

    Inputs are those of the ASR pipelines: a path, file bytes, `{"raw": samples, "sampling_rate": Hz}` or a 16 kHz
    array; a list of them is embedded in batches of `batch_size` windows, with the same result as one at a time.
    Recordings longer than `window_length_s` are embedded window by window in bounded memory, and the windows'
    embeddings averaged, weighted by the audio each stands for (`processing_mt2kd.pipelines.windowing`).

    Args:
        threshold: cosine score at and above which `verify` and `score_trials` answer "same speaker". Default: the
            threshold calibrated on dev trials and stored in the model folder (`speaker_threshold`); a folder
            without one gives scores with `same_speaker` None and logs why.

    Call parameters:
        window_length_s, window_overlap_s: window size and overlap in seconds (defaults 30 and 5).
        return_windows: also return `"windows"`: `[{"timestamp": (start_s, end_s), "embedding"}]`.

    Raises (every method):
        FileNotFoundError: a path that does not exist.
        ValueError: undecodable, empty, NaN or too short audio.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def __init__(self, *args, threshold: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        calibrated = read_calibrated_threshold(self.model.config)
        self.calibrated_threshold = calibrated
        self.threshold = threshold if threshold is not None else (calibrated.threshold if calibrated else None)

    def _sanitize_parameters(
        self,
        window_length_s: float | None = None,
        window_overlap_s: float | None = None,
        return_windows: bool | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, postprocess_params = window_call_parameters(
            window_length_s, window_overlap_s, return_windows=return_windows
        )
        return preprocess_params, {}, postprocess_params

    def preprocess(
        self, inputs: AudioInput, window_settings: WindowSettings = WindowSettings()
    ) -> Iterator[dict[str, Any]]:
        waveform = read_audio_input(inputs, self.feature_extractor)
        yield from window_model_inputs(
            waveform, self.feature_extractor, window_settings, self.model.config.inputs_to_logits_ratio
        )

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        embeddings = self.model(
            input_features=model_inputs.pop("input_features"), attention_mask=model_inputs.pop("attention_mask")
        ).embeddings
        return {"embeddings": embeddings, **model_inputs}  # the window positions and `is_last` pass through

    def postprocess(self, model_outputs: list[dict[str, Any]], return_windows: bool = False) -> dict[str, Any]:
        """`{"embedding": (speaker_embedding_dim,) float32}`, plus `"windows"` with `return_windows=True`."""
        windows = [AudioChunk.from_tensors(output) for output in model_outputs]
        embeddings = [output["embeddings"].reshape(-1).float() for output in model_outputs]
        result = {"embedding": pool_windows(embeddings, windows).numpy()}
        if return_windows:
            sampling_rate = self.feature_extractor.sampling_rate
            result["windows"] = [
                {"timestamp": window_timestamp(window, sampling_rate), "embedding": embedding.numpy()}
                for window, embedding in zip(windows, embeddings)
            ]
        return result

    def embed(self, inputs: Sequence[AudioInput], batch_size: int | None = None) -> np.ndarray:
        """`(len(inputs), speaker_embedding_dim)` float32 embeddings, computed `batch_size` recordings at a time."""
        if len(inputs) == 0:
            raise ValueError("got no recordings to embed; pass at least one")
        outputs = self(list(inputs), batch_size=batch_size)
        return np.stack([output["embedding"] for output in outputs])

    def score(self, enrollment: AudioInput, test: AudioInput) -> float:
        """Cosine similarity in [-1, 1] of the two recordings' speaker embeddings."""
        embeddings = torch.from_numpy(self.embed([enrollment, test]))
        return float(cosine_scores(embeddings[0], embeddings[1]))

    def verify(self, enrollment: AudioInput, test: AudioInput, threshold: float | None = None) -> dict[str, Any]:
        """`{"score", "same_speaker", "threshold"}`: same speaker when the cosine score >= `threshold` (default: the
        pipeline's `threshold`); `same_speaker` and `threshold` are None when there is no threshold."""
        threshold = self._decision_threshold(threshold)
        score = self.score(enrollment, test)
        return {"score": score, "same_speaker": _decide(score, threshold), "threshold": threshold}

    def _decision_threshold(self, threshold: float | None) -> float | None:
        threshold = self.threshold if threshold is None else threshold
        if threshold is None:
            logger.warning_once(NO_THRESHOLD_MESSAGE)
        return threshold

    def score_trials(
        self,
        trials: str | os.PathLike | Sequence[TrialInput],
        audio_root: str | os.PathLike | None = None,
        batch_size: int | None = 8,
        threshold: float | None = None,
    ) -> list[dict[str, Any]]:
        """Score a trial list; each distinct recording is embedded once, in batches.

        Args:
            trials: a trial-list file (lines `enrolment test label`, label 1/0 or target/nontarget; VoxCeleb's
                `label enrolment test` also works), or a sequence of `(enrolment, test)` or
                `(enrolment, test, is_target)` pairs of pipeline inputs.
            audio_root: folder that relative paths are taken from; default: the trial file's folder for a file,
                the working directory for pairs.
            batch_size: recordings per model call.
            threshold: decision threshold (default: the pipeline's `threshold`).

        Returns:
            One dict per trial, in order: `{"enrollment", "test", "score", "same_speaker"}`, plus `"is_target"` when
            the trial has a label. Paths are reported as given in the trials. `same_speaker` is None when there is
            no threshold.
        """
        threshold = self._decision_threshold(threshold)
        if isinstance(trials, (str, os.PathLike)):
            audio_root = Path(trials).parent if audio_root is None else audio_root
            trials = read_trial_list(trials)
        pairs = [_as_trial(trial) for trial in trials]
        if not pairs:
            raise ValueError("got no trials; pass (enrolment, test) pairs or a trial-list file")

        # Distinct recordings by path (by object for arrays and bytes), each embedded once.
        recordings: dict[Any, AudioInput] = {}
        for enrollment, test, _ in pairs:
            for recording in (enrollment, test):
                recordings.setdefault(_recording_key(recording), _resolve(recording, audio_root))
        keys = list(recordings)
        embeddings = torch.from_numpy(self.embed(list(recordings.values()), batch_size=batch_size))
        row_of = {key: row for row, key in enumerate(keys)}
        enrollment_rows = [row_of[_recording_key(enrollment)] for enrollment, _, _ in pairs]
        test_rows = [row_of[_recording_key(test)] for _, test, _ in pairs]
        scores = cosine_scores(embeddings[enrollment_rows], embeddings[test_rows]).tolist()

        results = []
        for (enrollment, test, is_target), score in zip(pairs, scores):
            result = {
                "enrollment": _describe(enrollment),
                "test": _describe(test),
                "score": score,
                "same_speaker": _decide(score, threshold),
            }
            if is_target is not None:
                result["is_target"] = is_target
            results.append(result)
        return results


def _decide(score: float, threshold: float | None) -> bool | None:
    return None if threshold is None else score >= threshold


def _as_trial(trial: TrialInput) -> tuple[AudioInput, AudioInput, bool | None]:
    if isinstance(trial, Trial):
        return trial.enrollment, trial.test, trial.is_target
    if isinstance(trial, (tuple, list)) and len(trial) in (2, 3):
        return trial[0], trial[1], (bool(trial[2]) if len(trial) == 3 else None)
    raise ValueError(
        f"a trial must be (enrolment, test) or (enrolment, test, is_target); got {type(trial).__name__} {trial!r:.80}"
    )


def _recording_key(recording: AudioInput) -> Any:
    return os.fspath(recording) if isinstance(recording, (str, os.PathLike)) else id(recording)


def _resolve(recording: AudioInput, audio_root: str | os.PathLike | None) -> AudioInput:
    if audio_root is not None and isinstance(recording, (str, os.PathLike)):
        return Path(audio_root) / recording  # an absolute `recording` stays as it is
    return recording


def _describe(recording: AudioInput) -> str:
    return os.fspath(recording) if isinstance(recording, (str, os.PathLike)) else f"<{type(recording).__name__}>"
