"""Speaker-verification error rates: DET curve, EER, minDCF (cosine scores come from the pipeline side).

A trial is accepted as "same speaker" when its score >= a threshold. Miss = a target trial
rejected; false alarm = a non-target trial accepted. Rates are fractions in [0, 1].
"""

import numpy as np
from processing_mt2kd.pipelines.speaker_scoring import cosine_scores
from training_mt2kd.evaluation.metrics._inputs import ArrayLike, as_binary_labels, as_scores


def det_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every operating point of a detector, for a DET plot.

    Args:
        scores: (num_trials,) higher means more likely the same speaker.
        labels: (num_trials,) 1 (or True) for target trials, 0 for non-target trials; both kinds needed.
    Returns:
        (false_alarm_rate, miss_rate, thresholds), each (num_distinct_scores + 1,): at threshold
        thresholds[i] trials with score >= thresholds[i] are accepted. Thresholds rise from the
        lowest score (accept all: miss 0, false alarm 1) to +inf (reject all: miss 1, false alarm 0).
    """
    target_scores, nontarget_scores = _split_trials(scores, labels)
    thresholds = np.append(np.unique(np.concatenate([target_scores, nontarget_scores])), np.inf)
    num_targets_rejected = np.searchsorted(np.sort(target_scores), thresholds, side="left")
    num_nontargets_rejected = np.searchsorted(np.sort(nontarget_scores), thresholds, side="left")
    miss_rate = num_targets_rejected / target_scores.size
    false_alarm_rate = 1.0 - num_nontargets_rejected / nontarget_scores.size
    return false_alarm_rate, miss_rate, thresholds


def equal_error_rate(scores: ArrayLike, labels: ArrayLike) -> float:
    """The rate at which misses and false alarms are equal (a fraction; x100 for %).

    Found where the DET curve crosses miss = false alarm, interpolating linearly between the two
    neighbouring operating points when no threshold gives exactly equal rates.
    """
    return _equal_error_point(*det_curve(scores, labels))[0]


def equal_error_rate_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """A score threshold at the equal error rate: of the two operating points around the
    crossing, the one whose miss and false-alarm rates are closer."""
    return _equal_error_point(*det_curve(scores, labels))[1]


def _equal_error_point(
    false_alarm_rate: np.ndarray, miss_rate: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float]:
    # miss - false_alarm rises with the threshold from -1 (accept all) to +1 (reject all).
    difference = miss_rate - false_alarm_rate
    after = int(np.argmax(difference >= 0.0))
    if difference[after] == 0.0:  # never at index 0, where the difference is -1
        return float(miss_rate[after]), float(thresholds[after])
    before = after - 1
    fraction = -difference[before] / (difference[after] - difference[before])
    rate = false_alarm_rate[before] + fraction * (false_alarm_rate[after] - false_alarm_rate[before])
    closer = before if abs(difference[before]) <= abs(difference[after]) else after
    return float(rate), float(thresholds[closer])


def min_dcf(
    scores: ArrayLike,
    labels: ArrayLike,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Normalised minimum detection cost (NIST SRE / VoxSRC).

    min over thresholds of  (c_miss * p_target * miss + c_fa * (1 - p_target) * false_alarm)
                            / min(c_miss * p_target, c_fa * (1 - p_target)),
    so 1.0 is the cost of always answering the cheaper constant decision. VoxCeleb results quote
    p_target 0.01 or 0.05.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1); got {p_target}")
    if c_miss <= 0.0 or c_fa <= 0.0:
        raise ValueError(f"c_miss and c_fa must be > 0; got {c_miss} and {c_fa}")
    false_alarm_rate, miss_rate, _ = det_curve(scores, labels)
    cost = c_miss * p_target * miss_rate + c_fa * (1.0 - p_target) * false_alarm_rate
    default_cost = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(cost.min() / default_cost)


def _split_trials(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(target scores, non-target scores), checked."""
    scores = as_scores(scores, "scores", ndim=1)
    labels = as_binary_labels(labels, "labels", ndim=1)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have the same length; got {scores.size} and {labels.size}")
    num_targets = int(labels.sum())
    if num_targets == 0 or num_targets == labels.size:
        raise ValueError(
            f"need both target and non-target trials; got {num_targets} target and "
            f"{labels.size - num_targets} non-target"
        )
    return scores[labels], scores[~labels]
