"""Fast paths give the numbers of the code they replace (benchmarks/RESULTS.md says what each one buys)."""

import pytest
import torch
import torch.nn.functional as F

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForRNNT
from modeling_mt2kd.decoding import greedy_search
from modeling_mt2kd.heads.transducer import TransducerPredictor


class _ConvolutionPredictor(torch.nn.Module):
    """The decoding path before the fast path: the context window through `nn.Conv1d`."""

    def __init__(self, predictor: TransducerPredictor):
        super().__init__()
        self.predictor = predictor
        self.context_size, self.blank_id = predictor.context_size, predictor.blank_id

    def forward(self, tokens: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        embedded = self.predictor.embedding(tokens.clamp(min=0)) * (tokens >= 0).unsqueeze(-1)
        return F.relu(self.predictor.context_conv(embedded.transpose(1, 2)).transpose(1, 2))


def _contexts(vocab_size: int, batch_size: int, context_size: int) -> torch.Tensor:
    """Random token contexts, with the start-of-utterance padding (-1) and blanks among them."""
    contexts = torch.randint(0, vocab_size, (batch_size, context_size))
    contexts[0, :-1] = -1
    contexts[1, -1] = 0
    return contexts


@pytest.mark.parametrize("decoder_dim, context_size", [(512, 2), (32, 2), (32, 3)])
def test_one_position_predictor_equals_the_context_convolution(decoder_dim, context_size):
    torch.manual_seed(0)
    predictor = TransducerPredictor(vocab_size=50, decoder_dim=decoder_dim, blank_id=0, context_size=context_size).eval()
    contexts = _contexts(50, 6, context_size)
    with torch.no_grad():
        fast = predictor(contexts, need_pad=False)
        reference = _ConvolutionPredictor(predictor)(contexts)
    assert fast.shape == (6, 1, decoder_dim)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)


def test_one_position_predictor_equals_the_last_position_of_the_padded_sequence():
    torch.manual_seed(0)
    predictor = TransducerPredictor(vocab_size=50, decoder_dim=64, blank_id=0, context_size=2).eval()
    tokens = torch.randint(1, 50, (4, 2))
    with torch.no_grad():
        torch.testing.assert_close(
            predictor(tokens, need_pad=False), predictor(tokens, need_pad=True)[:, -1:], rtol=1e-5, atol=1e-6
        )


def test_one_position_predictor_still_refuses_a_context_of_the_wrong_length():
    predictor = TransducerPredictor(vocab_size=50, decoder_dim=32, blank_id=0, context_size=2).eval()
    with pytest.raises(ValueError, match="context_size=2"):
        predictor(torch.ones(2, 3, dtype=torch.long), need_pad=False)


def test_greedy_search_decodes_the_same_tokens_and_scores_as_with_the_convolution():
    torch.manual_seed(0)
    model = MT2KDForRNNT(MT2KDConfig.from_preset("mt2kd-tiny")).eval()
    transducer = model.transducer
    encoder_out = torch.randn(3, 40, model.config.output_dim)
    lengths = torch.tensor([40, 31, 7])
    fast = greedy_search(encoder_out, lengths, transducer.predictor, transducer.joiner, max_symbols_per_frame=2)
    reference = greedy_search(
        encoder_out, lengths, _ConvolutionPredictor(transducer.predictor).eval(), transducer.joiner,
        max_symbols_per_frame=2,
    )
    assert [hyp.tokens for hyp in fast] == [hyp.tokens for hyp in reference]
    assert [hyp.frames for hyp in fast] == [hyp.frames for hyp in reference]
    assert [hyp.score for hyp in fast] == pytest.approx([hyp.score for hyp in reference], rel=1e-6)
