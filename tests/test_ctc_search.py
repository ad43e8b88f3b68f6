"""Greedy CTC decoding: collapse repeats, drop blanks, keep the frame of each token."""

import pytest
import torch

from modeling_mt2kd.decoding import ctc_greedy_decode

BLANK = 0


def _logits_for(best_ids: list[list[int]], vocab: int = 5) -> torch.Tensor:
    """(batch, frames, vocab) logits whose best label at each frame is `best_ids[b][t]`."""
    return torch.nn.functional.one_hot(torch.tensor(best_ids), vocab).float() * 5.0


def test_repeats_collapse_and_blanks_are_dropped():
    (result,) = ctc_greedy_decode(_logits_for([[0, 1, 1, 0, 2, 2, 0, 0, 3]]), torch.tensor([9]), BLANK)
    assert result.tokens == [1, 2, 3]


def test_a_blank_between_repeats_keeps_both():
    (result,) = ctc_greedy_decode(_logits_for([[1, 1, 0, 1, 2, 2]]), torch.tensor([6]), BLANK)
    assert result.tokens == [1, 1, 2]


def test_frames_are_the_first_frame_of_each_run():
    (result,) = ctc_greedy_decode(_logits_for([[0, 1, 1, 0, 1, 2, 2]]), torch.tensor([7]), BLANK)
    assert result.frames == [1, 4, 5]


def test_padding_frames_are_ignored_and_empty_utterances_decode_to_nothing():
    logits = _logits_for([[1, 2, 3, 4], [2, 3, 3, 1], [4, 4, 4, 4]])
    results = ctc_greedy_decode(logits, torch.tensor([4, 2, 0]), BLANK)
    assert [result.tokens for result in results] == [[1, 2, 3, 4], [2, 3], []]
    assert results[2].score == 0.0


def test_score_is_the_best_path_log_probability_and_log_probs_decode_like_logits():
    logits = torch.randn(2, 6, 5, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([6, 3])
    from_logits = ctc_greedy_decode(logits, lengths, BLANK)
    from_log_probs = ctc_greedy_decode(logits.log_softmax(-1), lengths, BLANK)
    for from_logit, from_log_prob in zip(from_logits, from_log_probs):
        assert (from_logit.tokens, from_logit.frames) == (from_log_prob.tokens, from_log_prob.frames)
        assert from_logit.score == pytest.approx(from_log_prob.score, rel=1e-6)
    expected = logits[1, :3].log_softmax(-1).max(-1).values.sum().item()
    assert from_logits[1].score == pytest.approx(expected, rel=1e-6)


def test_a_non_zero_blank_id_is_honoured():
    (result,) = ctc_greedy_decode(_logits_for([[4, 1, 4, 1, 1, 4]]), torch.tensor([6]), blank_id=4)
    assert result.tokens == [1, 1] and result.frames == [1, 3]


def test_lengths_longer_than_the_logits_are_rejected():
    with pytest.raises(ValueError, match=r"frame lengths in \[0, 3\]"):
        ctc_greedy_decode(torch.zeros(1, 3, 5), torch.tensor([4]), BLANK)


def test_blank_outside_the_vocabulary_is_rejected():
    with pytest.raises(ValueError, match="blank_id 7 is outside the vocabulary"):
        ctc_greedy_decode(torch.zeros(1, 3, 5), torch.tensor([3]), blank_id=7)
