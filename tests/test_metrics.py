"""Specification of training_mt2kd.evaluation.metrics: WER, mAP, EER/minDCF/DET, cosine scores, trial lists."""

import numpy as np
import pytest
import torch

from training_mt2kd.evaluation.metrics import (
    TextNormalizer,
    average_precision,
    cosine_scores,
    det_curve,
    equal_error_rate,
    equal_error_rate_threshold,
    mean_average_precision,
    min_dcf,
    read_trial_list,
    word_error_rate,
)

# Four target and four non-target trials: at threshold 0.6 one of each side is wrong.
TARGET_SCORES = [0.9, 0.8, 0.7, 0.3]
NONTARGET_SCORES = [0.6, 0.4, 0.2, 0.1]
SCORES = TARGET_SCORES + NONTARGET_SCORES
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]


# ---- word error rate -----------------------------------------------------------------------


def test_one_substitution_in_three_words_is_a_third():
    result = word_error_rate(["the cat sat"], ["the cat sad"])
    assert result.wer == pytest.approx(1 / 3)
    assert (result.substitutions, result.deletions, result.insertions, result.num_words) == (1, 0, 0, 3)


def test_errors_and_words_are_summed_over_utterances():
    result = word_error_rate(["a b c d", "e f"], ["a x c d z", "e"])
    assert (result.substitutions, result.deletions, result.insertions) == (1, 1, 1)
    assert result.num_words == 6
    assert result.wer == pytest.approx(3 / 6)


def test_normalisation_ignores_case_punctuation_and_spacing():
    assert word_error_rate("Hello, world!  Don't stop.", "HELLO WORLD don’t stop").wer == 0.0
    assert word_error_rate("Hello, world!", "hello world", normalize=False).wer == 1.0


def test_text_normalizer_steps():
    normalizer = TextNormalizer(case="lower")
    assert normalizer(' "Well-known," she said;  it\'s 50 $ ') == "well known she said it's 50 $"
    assert TextNormalizer(remove_punctuation=False)("a,  b") == "A, B"


def test_hypothesis_words_for_an_empty_reference_are_insertions():
    result = word_error_rate(["one two", ""], ["one two", "three"])
    assert (result.insertions, result.num_words) == (1, 2)


def test_mismatched_reference_and_hypothesis_counts_are_an_error():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])


def test_references_without_words_are_an_error():
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["", "..."], ["a", "b"])


# ---- average precision ---------------------------------------------------------------------


def test_average_precision_of_a_small_ranking_by_hand():
    # Ranked: +, -, +, -  ->  precision 1 at recall 1/2, precision 2/3 at recall 1.
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_tied_scores_form_one_threshold():
    assert average_precision([0.5, 0.5, 0.1], [0, 1, 0]) == pytest.approx(0.5)


def test_mean_average_precision_skips_classes_without_positives():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.7, 0.6, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    result = mean_average_precision(scores, targets)
    assert result.per_class[0] == pytest.approx(1.0)
    assert result.per_class[1] == pytest.approx(1.0)
    assert np.isnan(result.per_class[2])
    assert result.num_classes_scored == 2
    assert result.mean_average_precision == pytest.approx(1.0)


def test_mean_average_precision_accepts_torch_tensors():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert mean_average_precision(scores, targets).mean_average_precision == pytest.approx(1.0)


def test_soft_targets_are_rejected():
    with pytest.raises(ValueError, match="only 0 and 1"):
        mean_average_precision(np.zeros((2, 2)), np.full((2, 2), 0.3))


def test_average_precision_agrees_with_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(0)
    targets = generator.random((300, 12)) < 0.15
    scores = targets * 0.5 + generator.random((300, 12))
    scores[:, :4] = np.round(scores[:, :4], 1)  # some classes with many ties
    result = mean_average_precision(scores, targets)
    expected = [sklearn_metrics.average_precision_score(targets[:, c], scores[:, c]) for c in range(12)]
    np.testing.assert_allclose(result.per_class, expected, rtol=1e-12)
    assert result.mean_average_precision == pytest.approx(
        sklearn_metrics.average_precision_score(targets, scores, average="macro"), rel=1e-12
    )


# ---- speaker verification ------------------------------------------------------------------


def test_equal_error_rate_where_one_threshold_balances_the_errors():
    assert equal_error_rate(SCORES, LABELS) == pytest.approx(0.25)
    assert equal_error_rate_threshold(SCORES, LABELS) == pytest.approx(0.6)


def test_equal_error_rate_of_separable_and_reversed_scores():
    assert equal_error_rate([0.8, 0.9, 0.1, 0.2], [1, 1, 0, 0]) == 0.0
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 1.0


def test_equal_error_rate_interpolates_between_operating_points():
    # A target and a non-target tie at 0.5, so consecutive thresholds give (miss, false alarm) =
    # (0, 1/2) then (1/2, 0): the segment between them crosses miss = false alarm at 1/4.
    assert equal_error_rate([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(0.25)


def test_min_dcf_by_hand():
    # With p_target 0.5 the normalised cost is miss + false alarm; best at threshold 0.7: 1/4 + 0.
    assert min_dcf(SCORES, LABELS, p_target=0.5) == pytest.approx(0.25)


def test_det_curve_agrees_with_scikit_learn_roc_curve():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(1)
    labels = generator.random(500) < 0.3
    scores = np.round(labels + generator.normal(size=500), 2)  # rounded: ties happen
    false_alarm_rate, miss_rate, thresholds = det_curve(scores, labels)
    fpr, tpr, roc_thresholds = sklearn_metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(false_alarm_rate[::-1], fpr)
    np.testing.assert_allclose(miss_rate[::-1], 1 - tpr)
    np.testing.assert_array_equal(thresholds[::-1], roc_thresholds)


def test_eer_and_min_dcf_agree_with_scikit_learn_operating_points():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(2)
    labels = generator.random(2000) < 0.5
    scores = 1.5 * labels + generator.normal(size=2000)
    fpr, tpr, _ = sklearn_metrics.roc_curve(labels, scores)
    fnr = 1 - tpr
    closest = np.argmin(np.abs(fnr - fpr))
    assert equal_error_rate(scores, labels) == pytest.approx((fnr[closest] + fpr[closest]) / 2, abs=2e-3)
    expected_dcf = np.min(0.01 * fnr + 0.99 * fpr) / 0.01
    assert min_dcf(scores, labels, p_target=0.01) == pytest.approx(expected_dcf, rel=1e-12)


def test_verification_needs_both_kinds_of_trial():
    with pytest.raises(ValueError, match="2 target and 0 non-target"):
        equal_error_rate([0.1, 0.2], [1, 1])


def test_cosine_scores_compare_directions_pairwise():
    enrollment = torch.tensor([[1.0, 0.0], [2.0, 2.0], [1.0, 0.0]])
    test = torch.tensor([[0.0, 3.0], [1.0, 1.0], [-1.0, 0.0]])
    torch.testing.assert_close(cosine_scores(enrollment, test), torch.tensor([0.0, 1.0, -1.0]))


# ---- trial lists ---------------------------------------------------------------------------


def test_trial_list_reads_kaldi_and_voxceleb_orders(tmp_path):
    path = tmp_path / "trials.txt"
    path.write_text(
        "# enrolment test label\n"
        "spk1/a.wav spk1/b.wav target\n"
        "spk1/a.wav spk2/c.wav nontarget\n"
        "\n"
        "spk2/c.wav spk2/d.wav 1\n"
        "0 id10270/x.wav id10300/y.wav\n"
    )
    trials = read_trial_list(path)
    assert [(t.enrollment, t.test, t.is_target) for t in trials] == [
        ("spk1/a.wav", "spk1/b.wav", True),
        ("spk1/a.wav", "spk2/c.wav", False),
        ("spk2/c.wav", "spk2/d.wav", True),
        ("id10270/x.wav", "id10300/y.wav", False),
    ]


def test_trial_list_line_without_a_label_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "trials.txt"
    path.write_text("a.wav b.wav target\na.wav b.wav maybe\n")
    with pytest.raises(ValueError, match=r"trials.txt:2: .*maybe"):
        read_trial_list(path)
