"""Evaluation metrics: WER for ASR, mAP for audio tagging, EER/minDCF for speaker verification; the same three as
`evaluate` modules shipped with the package (`load_metric("mt2kd_wer")`, offline)."""

from training_mt2kd.evaluation.metrics.average_precision import MeanAveragePrecision, average_precision, mean_average_precision
from training_mt2kd.evaluation.metrics.evaluate_modules import METRIC_NAMES, load_metric, metric_path
from training_mt2kd.evaluation.metrics.speaker_verification import (
    cosine_scores,
    det_curve,
    equal_error_rate,
    equal_error_rate_threshold,
    min_dcf,
)
from processing_mt2kd.pipelines.trial_list import Trial, read_trial_list
from training_mt2kd.evaluation.metrics.word_error_rate import TextNormalizer, WordErrorRate, word_error_rate

__all__ = [
    "METRIC_NAMES",
    "MeanAveragePrecision",
    "TextNormalizer",
    "Trial",
    "WordErrorRate",
    "average_precision",
    "cosine_scores",
    "det_curve",
    "equal_error_rate",
    "equal_error_rate_threshold",
    "load_metric",
    "mean_average_precision",
    "metric_path",
    "min_dcf",
    "read_trial_list",
    "word_error_rate",
]
