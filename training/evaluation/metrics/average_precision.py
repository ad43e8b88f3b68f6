"""Average precision for multi-label audio tagging (AudioSet protocol)."""

from dataclasses import dataclass

import numpy as np

from training_mt2kd.evaluation.metrics._inputs import ArrayLike, as_binary_labels, as_scores


def average_precision(scores: ArrayLike, targets: ArrayLike) -> float:
    """Area under the precision-recall curve of one class, as a step function.

    AP = sum over distinct score thresholds t (high to low) of (R(t) - R(previous t)) * P(t), where
    an item is called positive when its score >= t; tied scores form one threshold. This equals
    scikit-learn's `average_precision_score`.

    Args:
        scores: (num_items,) higher means more likely positive.
        targets: (num_items,) 0/1; at least one 1.
    """
    scores = as_scores(scores, "scores", ndim=1)
    targets = as_binary_labels(targets, "targets", ndim=1)
    if scores.shape != targets.shape:
        raise ValueError(
            f"scores and targets must have the same shape; got {scores.shape} and {targets.shape}"
        )
    if not targets.any():
        raise ValueError("targets has no positive item, so average precision is undefined")
    return _average_precision(scores, targets)


def _average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    scores, targets = scores[order], targets[order]
    # The last index of each run of tied scores: one operating point per distinct threshold.
    threshold_ends = np.append(np.flatnonzero(np.diff(scores)), scores.size - 1)
    true_positives = np.cumsum(targets)[threshold_ends]
    precision = true_positives / (threshold_ends + 1)
    recall = true_positives / true_positives[-1]
    recall_gain = np.diff(recall, prepend=0.0)
    return float(np.sum(recall_gain * precision))


@dataclass(frozen=True)
class MeanAveragePrecision:
    """Macro mAP: the unweighted mean of the per-class APs of the classes that were scored.

    Attributes:
        mean_average_precision: in [0, 1].
        per_class: (num_classes,) AP of each class; NaN for a class with no positive item.
        num_classes_scored: how many classes entered the mean.
    """

    mean_average_precision: float
    per_class: np.ndarray
    num_classes_scored: int


def mean_average_precision(scores: ArrayLike, targets: ArrayLike) -> MeanAveragePrecision:
    """Macro mean average precision over classes (AudioSet's tagging metric).

    As in the AudioSet evaluation protocol, a class with no positive clip in `targets` has no
    defined AP and is skipped: it is NaN in `per_class` and left out of the mean.

    Args:
        scores: (num_clips, num_classes) logits or probabilities (AP only uses their order).
        targets: (num_clips, num_classes) multi-hot 0/1 labels.
    """
    scores = as_scores(scores, "scores", ndim=2)
    targets = as_binary_labels(targets, "targets", ndim=2)
    if scores.shape != targets.shape:
        raise ValueError(
            "scores and targets must both be (num_clips, num_classes); got "
            f"{scores.shape} and {targets.shape}"
        )
    per_class = np.full(scores.shape[1], np.nan)
    scored = np.flatnonzero(targets.any(axis=0))
    if scored.size == 0:
        raise ValueError("no class has a positive clip in targets, so mAP is undefined")
    for class_index in scored:
        per_class[class_index] = _average_precision(scores[:, class_index], targets[:, class_index])
    return MeanAveragePrecision(
        mean_average_precision=float(np.mean(per_class[scored])),
        per_class=per_class,
        num_classes_scored=int(scored.size),
    )
