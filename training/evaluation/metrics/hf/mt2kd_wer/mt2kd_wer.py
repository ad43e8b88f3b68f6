"""`evaluate` module: corpus word error rate through jiwer, with MT2KD's TextNormalizer.

The formula and the normalisation live in `training_mt2kd.evaluation.metrics.word_error_rate`; this module
only adapts them to `evaluate`'s interface, so its results equal `word_error_rate(...)` exactly.
"""

import datasets
import evaluate

from training_mt2kd.evaluation.metrics.word_error_rate import TextNormalizer, word_error_rate

_DESCRIPTION = """Corpus word error rate: (substitutions + deletions + insertions) / reference words, summed over
utterances and aligned with jiwer, after MT2KD's TextNormalizer (NFKC, upper case, punctuation removed except
apostrophes inside words, whitespace collapsed)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: recognised transcripts, one string per utterance.
    references: reference transcripts, one string per utterance.
    normalize: True (default) applies `TextNormalizer()` to both sides; a `TextNormalizer` chooses the steps
        (e.g. `TextNormalizer(case="lower")`); False only splits on whitespace.
Returns:
    wer: a fraction (x100 for percent); substitutions, deletions, insertions: counts; num_words: reference
    words after normalisation.
Examples:
    >>> wer = training_mt2kd.evaluation.metrics.load_metric("mt2kd_wer")
    >>> wer.compute(predictions=["hello word"], references=["Hello, world!"])["wer"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mt2kdWer(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, normalize: bool | TextNormalizer = True) -> dict:
        result = word_error_rate(references, predictions, normalize=normalize)
        return {
            "wer": result.wer,
            "substitutions": result.substitutions,
            "deletions": result.deletions,
            "insertions": result.insertions,
            "num_words": result.num_words,
        }
