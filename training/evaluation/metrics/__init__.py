"""Evaluation metrics: WER for ASR, mAP for audio tagging, EER/minDCF for speaker verification."""

from training_mt2kd.evaluation.metrics.average_precision import MeanAveragePrecision, average_precision, mean_average_precision
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
    "MeanAveragePrecision",
    "TextNormalizer",
    "Trial",
    "WordErrorRate",
    "average_precision",
    "cosine_scores",
    "det_curve",
    "equal_error_rate",
    "equal_error_rate_threshold",
    "mean_average_precision",
    "min_dcf",
    "read_trial_list",
    "word_error_rate",
]
