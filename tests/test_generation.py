"""modeling_mt2kd.generation: one `generate` / `decode` entry for every model with ASR heads, the search picked by
name (CTC best path, transducer greedy and modified beam search)."""

import pytest
import torch

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForCTC, MT2KDForMultiTask, MT2KDForRNNT
from modeling_mt2kd.decoding import ctc_greedy_decode
from modeling_mt2kd.generation import decode_transducer
from modeling_mt2kd.masks import lengths_to_mask, mask_to_lengths
from training_mt2kd.tasks import get_task


def tiny_model(model_class, **overrides):
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset("mt2kd-tiny", num_labels=3, num_speakers=3, whisper_dim=8, **overrides)
    return model_class(config).eval()


def padded_batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    features = torch.randn(len(lengths), max(lengths), 80, generator=torch.Generator().manual_seed(1))
    mask = lengths_to_mask(torch.tensor(lengths), max(lengths))
    return features.masked_fill(~mask.unsqueeze(-1), 0.0), mask.long()


def test_ctc_generate_is_the_best_path_of_the_forward_logits():
    model = tiny_model(MT2KDForCTC)
    features, mask = padded_batch([100, 60])
    with torch.no_grad():
        out = model(features, mask)
    expected = ctc_greedy_decode(out.logits, mask_to_lengths(out.attention_mask), model.config.blank_id)
    assert model.decoding_methods == ("ctc_greedy",)
    assert model.generate(features, mask) == expected == model.generate(features, mask, decoding_method="ctc_greedy")


@pytest.mark.parametrize("method", ["greedy_search", "modified_beam_search", "ctc_greedy"])
def test_multitask_generate_equals_decoding_its_forward_output(method):
    model = tiny_model(MT2KDForMultiTask)
    features, mask = padded_batch([100, 60])
    with torch.no_grad():
        out = model(features, mask)
    if method == "ctc_greedy":
        expected = ctc_greedy_decode(out.ctc_logits, mask_to_lengths(out.attention_mask), model.config.blank_id)
    else:
        lengths = mask_to_lengths(out.attention_mask)
        expected = decode_transducer(model.transducer, out.last_hidden_state, lengths, method, beam=3)
    assert model.generate(features, mask, decoding_method=method, beam=3) == expected
    assert model.decode(out.last_hidden_state, out.attention_mask, method, beam=3) == expected


def test_the_default_is_the_transducer_greedy_search_when_there_is_a_transducer():
    model = tiny_model(MT2KDForMultiTask)
    features, mask = padded_batch([80])
    assert model.decoding_methods[0] == "greedy_search"
    assert model.generate(features, mask) == model.generate(features, mask, decoding_method="greedy_search")
    assert tiny_model(MT2KDForMultiTask, use_transducer=False).decoding_methods == ("ctc_greedy",)


@pytest.mark.parametrize(
    "model_class, method", [(MT2KDForRNNT, "ctc_greedy"), (MT2KDForCTC, "greedy_search"), (MT2KDForRNNT, "beam")]
)
def test_a_method_the_heads_do_not_allow_is_refused_naming_the_allowed_ones(model_class, method):
    model = tiny_model(model_class)
    with pytest.raises(ValueError, match=rf"cannot decode with decoding_method='{method}'; its heads allow \["):
        model.generate(*padded_batch([80]), decoding_method=method)


def test_the_task_tables_asr_decodings_are_the_methods_generate_accepts():
    model = tiny_model(MT2KDForMultiTask)
    assert set(get_task("asr").model_decodings(model)) == set(model.decoding_methods)
