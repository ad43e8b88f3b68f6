"""`evaluate` module: macro mean average precision for multi-label audio tagging (AudioSet protocol).

The formula lives in `training_mt2kd.evaluation.metrics.average_precision`; this module only adapts it to
`evaluate`'s interface, so its results equal `mean_average_precision(...)` exactly.
"""

import datasets
import evaluate
import numpy as np

from training_mt2kd.evaluation.metrics.average_precision import mean_average_precision

_DESCRIPTION = """Macro mAP: the unweighted mean over classes of each class's average precision (area under its
step precision-recall curve, tied scores one threshold). A class with no positive clip is skipped, as in
AudioSet's evaluation."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one row of num_classes scores per clip (logits or probabilities; only their order counts).
    references: one multi-hot row of num_classes 0/1 labels per clip.
Returns:
    mean_average_precision: in [0, 1] (x100 for percent); per_class: the AP of each class (NaN for a class
    without a positive clip); num_classes_scored: how many classes entered the mean.
Examples:
    >>> tagging_map = training_mt2kd.evaluation.metrics.load_metric("mt2kd_map")
    >>> tagging_map.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]])["mean_average_precision"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mt2kdMap(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions, references) -> dict:
        result = mean_average_precision(_rows(predictions, np.float64), _rows(references, np.float64))
        return {
            "mean_average_precision": result.mean_average_precision,
            "per_class": result.per_class.tolist(),
            "num_classes_scored": result.num_classes_scored,
        }


def _rows(rows, dtype) -> np.ndarray:
    """(num_clips, num_classes) from the stored rows; rows of unequal length are named in the error."""
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        raise ValueError(f"every clip needs one value per class; got rows of lengths {sorted(lengths)}")
    return np.asarray(rows, dtype=dtype).reshape(len(rows), -1)
