"""`evaluate` module: speaker-verification equal error rate and normalised minimum detection cost.

The formulas live in `training_mt2kd.evaluation.metrics.speaker_verification`; this module only adapts them to
`evaluate`'s interface, so its results equal `equal_error_rate(...)` and `min_dcf(...)` exactly.
"""

from collections.abc import Sequence

import datasets
import evaluate

from training_mt2kd.evaluation.metrics.speaker_verification import equal_error_rate, min_dcf

_DESCRIPTION = """Speaker verification from trial scores: a trial is accepted as the same speaker when its score >=
a threshold. EER is the rate at which misses and false alarms are equal (interpolated on the DET curve); minDCF
is NIST's normalised minimum detection cost, min over thresholds of (c_miss * p_target * miss + c_fa *
(1 - p_target) * false_alarm) / min(c_miss * p_target, c_fa * (1 - p_target))."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one score per trial (e.g. cosine similarity); higher means more likely the same speaker.
    references: one label per trial, 1 for a target (same-speaker) trial, 0 for a non-target one; both kinds needed.
    p_target: the prior of a target trial for minDCF (VoxCeleb results quote 0.01 or 0.05), or a sequence of priors.
    c_miss, c_fa: the costs of a miss and of a false alarm.
Returns:
    eer: a fraction (x100 for percent); min_dcf: a float for one p_target, a list (one per prior, in order) for
    a sequence.
Examples:
    >>> verification = training_mt2kd.evaluation.metrics.load_metric("mt2kd_speaker_verification")
    >>> verification.compute(predictions=[0.9, 0.8, 0.3, 0.1], references=[1, 1, 0, 0])
    {'eer': 0.0, 'min_dcf': 0.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mt2kdSpeakerVerification(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            format="numpy",
        )

    def _compute(
        self,
        predictions,
        references,
        p_target: float | Sequence[float] = 0.01,
        c_miss: float = 1.0,
        c_fa: float = 1.0,
    ) -> dict:
        eer = equal_error_rate(predictions, references)
        if isinstance(p_target, Sequence):
            costs = [min_dcf(predictions, references, prior, c_miss, c_fa) for prior in p_target]
            return {"eer": eer, "min_dcf": costs}
        return {"eer": eer, "min_dcf": min_dcf(predictions, references, p_target, c_miss, c_fa)}
