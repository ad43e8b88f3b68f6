"""Transducer greedy and modified beam search on hand-built and random predictor/joiner pairs."""

import functools
import itertools
import math

import pytest
import torch
from torch import nn

from modeling_mt2kd.decoding import greedy_search, modified_beam_search

BLANK = 0


class _LastTokenPredictor(nn.Module):
    """context_size 1: the prediction is the one-hot (vocab,) of the last token."""

    context_size = 1
    blank_id = BLANK

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward(self, tokens: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        assert not need_pad and tokens.shape[1] == 1
        return nn.functional.one_hot(tokens, self.vocab).float()  # (N, 1, vocab)


class _TableJoiner(nn.Module):
    """Encoder frames are one-hot frame indices, so logits = log_probs[frame, last token] exactly."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.log_probs = log_probs  # (frames, vocab of the last token, vocab)
        self.encoder_proj = nn.Identity()
        self.decoder_proj = nn.Identity()

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True) -> torch.Tensor:
        return torch.einsum("nt,nc,tcv->nv", encoder_out, decoder_out, self.log_probs)


def _table_model(probs: list[list[list[float]]]) -> tuple[torch.Tensor, _LastTokenPredictor, _TableJoiner]:
    """From probs[frame][last token][token]: one-hot encoder frames (1, frames, frames), predictor, joiner."""
    log_probs = torch.tensor(probs).clamp(min=1e-30).log()  # finite, so one-hot products stay exact
    num_frames, vocab, _ = log_probs.shape
    return torch.eye(num_frames)[None], _LastTokenPredictor(vocab), _TableJoiner(log_probs)


class _IcefallLikePredictor(nn.Module):
    """Embedding (-1 -> zeros) + a convolution over the last two tokens, as icefall's stateless decoder."""

    context_size = 2
    blank_id = BLANK

    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size=self.context_size)

    def forward(self, tokens: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        embedded = self.embedding(tokens.clamp(min=0)) * (tokens >= 0)[..., None]  # (N, U, dim)
        embedded = embedded.transpose(1, 2)
        if need_pad:
            embedded = nn.functional.pad(embedded, (self.context_size - 1, 0))
        return torch.relu(self.conv(embedded)).transpose(1, 2)


class _Joiner(nn.Module):
    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab: int):
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab)

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor, project_input: bool = True) -> torch.Tensor:
        if project_input:
            encoder_out, decoder_out = self.encoder_proj(encoder_out), self.decoder_proj(decoder_out)
        return self.output_linear(torch.tanh(encoder_out + decoder_out))


def _random_model(seed: int, vocab: int = 6, frames: int = 7, batch: int = 4):
    torch.manual_seed(seed)
    predictor, joiner = _IcefallLikePredictor(vocab, 8), _Joiner(5, 8, 12, vocab)
    for parameter in joiner.output_linear.parameters():
        parameter.data.mul_(4.0)  # peakier distributions, so that tokens and blanks both occur
    return torch.randn(batch, frames, 5), predictor, joiner


# Frame 0: "1" is likelier than blank, but after "1" frame 1 is uncertain; after a blank it is
# almost surely "2". Greedy takes "1" then blank (0.6 * 0.5); beam finds blank then "2" (0.4 * 0.99).
_GARDEN_PATH = [
    [[0.4, 0.6, 0.0], [0.4, 0.6, 0.0], [0.4, 0.6, 0.0]],
    [[0.01, 0.0, 0.99], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]],
]


def test_greedy_search_emits_the_best_token_of_each_frame_with_its_frame():
    # Context-free table: frame t's best token is [blank, 2, blank, 1][t].
    rows = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.5, 0.3]]
    encoder_out, predictor, joiner = _table_model([[row] * 3 for row in rows])
    (result,) = greedy_search(encoder_out, torch.tensor([4]), predictor, joiner)
    assert result.tokens == [2, 1] and result.frames == [1, 3]
    assert result.score == pytest.approx(math.log(0.7 * 0.6 * 0.5 * 0.5))


def test_greedy_search_takes_the_locally_best_path():
    encoder_out, predictor, joiner = _table_model(_GARDEN_PATH)
    (result,) = greedy_search(encoder_out, torch.tensor([2]), predictor, joiner)
    assert result.tokens == [1] and result.frames == [0]
    assert result.score == pytest.approx(math.log(0.6 * 0.5))


def test_beam_search_finds_the_better_sequence_greedy_misses():
    encoder_out, predictor, joiner = _table_model(_GARDEN_PATH)
    (result,) = modified_beam_search(encoder_out, torch.tensor([2]), predictor, joiner, beam=2)
    assert result.tokens == [2] and result.frames == [1]
    assert result.score == pytest.approx(math.log(0.4 * 0.99))


def test_beam_search_with_a_full_beam_returns_the_most_probable_token_sequence():
    probs = torch.rand(4, 3, 3, generator=torch.Generator().manual_seed(1))
    probs = (probs / probs.sum(-1, keepdim=True)).tolist()
    encoder_out, predictor, joiner = _table_model(probs)

    # Brute force: every alignment (one label per frame), probabilities summed per token sequence.
    sequence_probs: dict[tuple[int, ...], float] = {}
    for alignment in itertools.product(range(3), repeat=4):
        prob, last, tokens = 1.0, BLANK, ()
        for frame, label in enumerate(alignment):
            prob *= probs[frame][last][label]
            if label != BLANK:
                last, tokens = label, tokens + (label,)
        sequence_probs[tokens] = sequence_probs.get(tokens, 0.0) + prob
    best_tokens = max(sequence_probs, key=sequence_probs.get)

    (result,) = modified_beam_search(encoder_out, torch.tensor([4]), predictor, joiner, beam=81, length_norm=False)
    assert tuple(result.tokens) == best_tokens
    assert result.score == pytest.approx(math.log(sequence_probs[best_tokens]), rel=1e-5)


def test_greedy_search_emits_several_tokens_in_one_frame_when_allowed():
    # At frame 0: after blank say "1", after "1" say "2", after "2" say blank.
    table = [[[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]], [[0.9, 0.05, 0.05]] * 3]
    encoder_out, predictor, joiner = _table_model(table)
    one, three = (
        greedy_search(encoder_out, torch.tensor([2]), predictor, joiner, max_symbols_per_frame=n)[0] for n in (1, 3)
    )
    assert (one.tokens, one.frames) == ([1], [0])
    assert (three.tokens, three.frames) == ([1, 2], [0, 0])
    assert three.score == pytest.approx(math.log(0.8 * 0.8 * 0.8 * 0.9))


def test_blank_penalty_turns_blanks_into_tokens():
    encoder_out, predictor, joiner = _table_model([[[0.9, 0.1, 0.0]] * 3] * 3)
    lengths = torch.tensor([3])
    assert greedy_search(encoder_out, lengths, predictor, joiner)[0].tokens == []
    assert greedy_search(encoder_out, lengths, predictor, joiner, blank_penalty=5.0)[0].tokens == [1, 1, 1]
    assert modified_beam_search(encoder_out, lengths, predictor, joiner, blank_penalty=5.0)[0].tokens == [1, 1, 1]


@pytest.mark.parametrize(
    "search",
    [greedy_search, functools.partial(greedy_search, max_symbols_per_frame=3), modified_beam_search],
    ids=["greedy", "greedy_3_per_frame", "beam"],
)
def test_batched_search_equals_one_utterance_at_a_time(search):
    encoder_out, predictor, joiner = _random_model(seed=0)
    lengths = torch.tensor([7, 3, 0, 1])
    batched = search(encoder_out, lengths, predictor, joiner)
    for utterance, length in enumerate(lengths.tolist()):
        (alone,) = search(encoder_out[utterance : utterance + 1, :length], torch.tensor([length]), predictor, joiner)
        assert (batched[utterance].tokens, batched[utterance].frames) == (alone.tokens, alone.frames)
        assert batched[utterance].score == pytest.approx(alone.score, abs=1e-5)
    assert any(result.tokens for result in batched), "the random model should emit some tokens"


@pytest.mark.parametrize("search", [greedy_search, modified_beam_search])
def test_zero_length_utterances_decode_to_nothing(search):
    encoder_out, predictor, joiner = _random_model(seed=0, frames=3, batch=2)
    results = search(encoder_out, torch.tensor([0, 0]), predictor, joiner)
    assert [(result.tokens, result.frames, result.score) for result in results] == [([], [], 0.0)] * 2


@pytest.mark.parametrize("search", [greedy_search, modified_beam_search])
def test_single_frame_utterances_emit_at_most_one_token_at_frame_zero(search):
    encoder_out, predictor, joiner = _random_model(seed=3, frames=1, batch=3)
    for result in search(encoder_out, torch.tensor([1, 1, 1]), predictor, joiner):
        assert len(result.tokens) <= 1 and result.frames == [0] * len(result.tokens)


@pytest.mark.parametrize("seed", range(4))
def test_beam_search_scores_at_least_as_high_as_greedy(seed):
    encoder_out, predictor, joiner = _random_model(seed=seed)
    lengths = torch.tensor([7, 6, 4, 2])
    greedy = greedy_search(encoder_out, lengths, predictor, joiner)
    beam = modified_beam_search(encoder_out, lengths, predictor, joiner, beam=4, length_norm=False)
    for greedy_result, beam_result in zip(greedy, beam):
        assert beam_result.score >= greedy_result.score - 1e-6


@pytest.mark.parametrize("search", [greedy_search, modified_beam_search])
def test_frames_are_non_decreasing_and_inside_the_utterance(search):
    encoder_out, predictor, joiner = _random_model(seed=5)
    lengths = torch.tensor([7, 5, 3, 6])
    for result, length in zip(search(encoder_out, lengths, predictor, joiner), lengths.tolist()):
        assert len(result.frames) == len(result.tokens)
        assert result.frames == sorted(result.frames) and all(0 <= frame < length for frame in result.frames)
        assert BLANK not in result.tokens


def test_lengths_that_do_not_match_the_batch_are_rejected():
    encoder_out, predictor, joiner = _random_model(seed=0)
    with pytest.raises(ValueError, match=r"expected lengths of shape \(4,\)"):
        greedy_search(encoder_out, torch.tensor([7, 7]), predictor, joiner)


def test_a_beam_below_one_is_rejected():
    encoder_out, predictor, joiner = _random_model(seed=0)
    with pytest.raises(ValueError, match="beam must be at least 1; got 0"):
        modified_beam_search(encoder_out, torch.tensor([7, 7, 7, 7]), predictor, joiner, beam=0)
