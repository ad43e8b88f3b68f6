"""Speaker-verification threshold from data: measured on a labelled dev trial list, stored in the model folder.

    calibrated = calibrate_folder_threshold("model", "dev_trials.txt")                      # EER threshold
    calibrated = calibrate_folder_threshold("model", "dev_trials.txt", target_false_accept_rate=0.01)

The trials are scored with the model folder's own verification pipeline (the embeddings `mt2kd verify` uses), the
threshold goes into `model/config.json` (`processing_mt2kd.pipelines.speaker_threshold`), and from then on the
pipeline and `mt2kd verify` decide with it by default; the model card reports it. Calibrate on dev trials, never
on the trials you report the EER of.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from processing_mt2kd.pipelines.speaker_threshold import (
    CALIBRATED_THRESHOLD_KEY,
    CalibratedThreshold,
    store_calibrated_threshold,
)
from training_mt2kd.evaluation.metrics import det_curve, equal_error_rate_threshold
from training_mt2kd.evaluation.metrics._inputs import ArrayLike, as_binary_labels, as_scores

__all__ = [
    "CALIBRATION_METHODS",
    "calibrate_folder_threshold",
    "calibrate_threshold",
    "store_evaluated_threshold",
    "threshold_result",
]

CALIBRATION_METHODS = ("equal_error_rate", "false_accept_rate")


def calibrate_threshold(
    scores: ArrayLike,
    labels: ArrayLike,
    trials: str,
    target_false_accept_rate: float | None = None,
) -> CalibratedThreshold:
    """The decision threshold of labelled trial scores.

    Args:
        scores: (num_trials,) cosine scores.
        labels: (num_trials,) 1 / True for target (same-speaker) trials; both kinds needed.
        trials: name of the trial list, recorded with the threshold.
        target_false_accept_rate: None: the equal-error-rate threshold. A fraction in (0, 1): the lowest
            threshold whose false-accept rate on these trials is at most it (fewest misses at that rate).
    """
    scores, labels = as_scores(scores, "scores", 1), as_binary_labels(labels, "labels", 1)
    false_accept_rate, miss_rate, thresholds = det_curve(scores, labels)
    if target_false_accept_rate is None:
        method = "equal_error_rate"
        threshold = equal_error_rate_threshold(scores, labels)
    else:
        if not 0.0 < target_false_accept_rate < 1.0:
            raise ValueError(
                f"target_false_accept_rate must be a fraction in (0, 1), e.g. 0.01 for 1 %; got "
                f"{target_false_accept_rate!r}"
            )
        method = "false_accept_rate"
        # Thresholds rise and false-accept rates fall along the DET curve: the first one at or under the target.
        threshold = float(thresholds[int(np.argmax(false_accept_rate <= target_false_accept_rate))])
        if not np.isfinite(threshold):  # only "reject everything" meets the target: go just above the top score
            threshold = float(np.nextafter(scores.max(), np.inf))
    point = min(int(np.searchsorted(thresholds, threshold, side="left")), len(thresholds) - 1)
    return CalibratedThreshold(
        threshold=threshold,
        method=method,
        trials=trials,
        num_target_trials=int(labels.sum()),
        num_nontarget_trials=int((~labels).sum()),
        false_accept_rate=float(false_accept_rate[point]),
        miss_rate=float(miss_rate[point]),
        target_false_accept_rate=target_false_accept_rate,
    )


def calibrate_folder_threshold(
    model_folder: str | os.PathLike,
    trials: str | os.PathLike,
    audio_root: str | os.PathLike | None = None,
    target_false_accept_rate: float | None = None,
    batch_size: int = 8,
    device: str | None = None,
) -> CalibratedThreshold:
    """Score a dev trial list with the folder's verification pipeline, calibrate, store in its config.json.

    Args:
        model_folder: a model folder with a speaker head (save_pretrained + feature extractor).
        trials: trial list, lines `enrolment test label` (label 1/0 or target/nontarget).
        audio_root: folder the trial paths are relative to (default: the trial list's folder).
        target_false_accept_rate: see [`calibrate_threshold`] (default: the EER threshold).
        batch_size: windows per model call.
        device: `"cpu"` or `"cuda"` (default: the pipeline's).
    """
    from transformers import pipeline

    import processing_mt2kd  # noqa: F401 - registers the verification pipeline
    from processing_mt2kd.pipelines import MT2KDSpeakerVerificationPipeline

    verifier = pipeline(
        "mt2kd-speaker-verification", model=str(model_folder), device=device,
        pipeline_class=MT2KDSpeakerVerificationPipeline,
    )
    scored = verifier.score_trials(trials, audio_root=audio_root, batch_size=batch_size, threshold=0.0)
    if any("is_target" not in result for result in scored):
        raise ValueError(f"{trials}: every trial needs a label (1/0 or target/nontarget) to calibrate a threshold")
    calibrated = calibrate_threshold(
        [result["score"] for result in scored], [result["is_target"] for result in scored], Path(trials).name,
        target_false_accept_rate,
    )
    store_calibrated_threshold(model_folder, calibrated)
    return calibrated


def threshold_result(spec: Any, scores: ArrayLike, labels: ArrayLike) -> dict[str, Any]:
    """The evaluation runner's `{"metric": "threshold", "value", "calibration": {...}}` entry of a speaker spec
    with `calibrate_threshold: true` (`spec`: a `SpeakerSpec`)."""
    trials = Path(spec.trials).name if spec.trials else f"{spec.dataset} {spec.split} (every pair)"
    calibrated = calibrate_threshold(scores, labels, trials, spec.target_false_accept_rate)
    entry = spec.result("threshold", calibrated.threshold, num_examples=len(as_scores(scores, "scores", 1)))
    entry[CALIBRATED_THRESHOLD_KEY] = calibrated.as_dict()
    return entry


def store_evaluated_threshold(model_folder: str | os.PathLike, results: Sequence[dict[str, Any]]) -> None:
    """Store the calibration of a runner's results (`threshold_result`) in the folder; nothing when there is none.
    Two calibrations in one evaluation are refused: which one the pipeline should use would be a guess."""
    calibrations = [entry[CALIBRATED_THRESHOLD_KEY] for entry in results if entry.get("metric") == "threshold"]
    if len(calibrations) > 1:
        raise ValueError(
            f"{len(calibrations)} speaker entries set calibrate_threshold; set it on the one dev trial list only"
        )
    if calibrations:
        store_calibrated_threshold(model_folder, CalibratedThreshold.from_dict(calibrations[0]))
