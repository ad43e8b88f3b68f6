"""Parity with the authors' icefall code: converted weights reproduce every reference output.

The fixture folder comes from MT2KD_PARITY_FIXTURE (default ../shared/fixtures/icefall_parity_tiny);
the config is built from that folder's README.json, so any fixture of this format can be checked.
The reference is not padding-invariant, ours is: the per-utterance reference outputs
(`io_single.safetensors`) must be reproduced both from a padded batch and from each utterance alone.
"""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modeling_mt2kd.convert_icefall import convert_icefall_checkpoint
from modeling_mt2kd.masks import lengths_to_mask

from .conftest import FIXTURES_DIR

FIXTURE = Path(os.environ.get("MT2KD_PARITY_FIXTURE", FIXTURES_DIR / "icefall_parity_tiny"))
ATOL = 1e-4


@pytest.fixture(scope="module")
def converted():
    stage2, stage1, report = convert_icefall_checkpoint(
        FIXTURE / "state_dict.safetensors",
        FIXTURE / "README.json",
        stage1_checkpoint=FIXTURE / "state_dict_stage1_only.safetensors",
    )
    return stage2, stage1, report


@pytest.fixture(scope="module")
def io():
    return load_file(str(FIXTURE / "io.safetensors"))


@pytest.fixture(scope="module")
def single():
    return load_file(str(FIXTURE / "io_single.safetensors"))


def run_all_outputs(stage2, stage1, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every output the fixture names, batch-first, from one forward of each model."""
    middle = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out, key=f"encoder.middle_out.{i}.{j}": middle.__setitem__(key, out))
        for i, stack in enumerate(stage2.mt2kd.encoder.stacks)
        for j, layer in enumerate(stack.layers)
    ]
    mask = lengths_to_mask(lengths, features.shape[1]).long()
    with torch.no_grad():
        out = stage2(features, attention_mask=mask, output_hidden_states=True)
        out1 = stage1(features, attention_mask=mask)
    for hook in hooks:
        hook.remove()
    transducer = stage2.transducer
    encoder_out = out.last_hidden_state
    results = {
        "encoder_embed.out": out.hidden_states[0],
        "encoder_out": encoder_out,
        "encoder_out_lens": out.attention_mask.sum(-1),
        "ctc_log_probs": out.ctc_logits.log_softmax(-1),
        "audio_tagging_logits": out.tagging_logits,
        "speaker_embedding": out.speaker_embeddings,
        "speaker_logits": out.speaker_logits,
        "simple_am_proj_out": transducer.simple_am_proj(encoder_out),
        "joiner.encoder_proj_out": transducer.joiner.encoder_proj(encoder_out),
        "stage1.whisper_projection": out1.whisper_prediction,
        "stage1.beats_logits": out1.tagging_logits,
        "stage1.ecapa_embedding": out1.speaker_embeddings,
        **{f"encoder.stack_out.{i}": h for i, h in enumerate(out.hidden_states[1:])},
        **middle,
    }
    return results


def predictor_outputs(stage2, sos_tokens: torch.Tensor, context: torch.Tensor, encoder_out: torch.Tensor):
    transducer = stage2.transducer
    with torch.no_grad():
        decoder_out = transducer.predictor(sos_tokens)
        return {
            "decoder_out": decoder_out,
            "decoder_out_infer": transducer.predictor(context, need_pad=False),
            "simple_lm_proj_out": transducer.simple_lm_proj(decoder_out),
            "joiner.decoder_proj_out": transducer.joiner.decoder_proj(decoder_out),
            "joiner_logits": transducer.joiner(encoder_out[:, :6].unsqueeze(2), decoder_out.unsqueeze(1)),
        }


UTTERANCE_LEVEL = {"audio_tagging_logits", "speaker_embedding", "speaker_logits", "stage1.beats_logits", "stage1.ecapa_embedding"}


def compare_with_single(outputs: dict[str, torch.Tensor], single: dict, b: int, row: int) -> int:
    compared = 0
    for name, ours in outputs.items():
        key = f"single.{b}.{name}"
        if key not in single:
            continue
        reference = single[key][0]
        mine = ours[row]
        if name.endswith("_lens"):
            assert int(mine) == int(reference), f"{name}: {int(mine)} != {int(reference)}"
        elif name in UTTERANCE_LEVEL:
            torch.testing.assert_close(mine, reference, atol=ATOL, rtol=ATOL, msg=lambda m: f"{name}: {m}")
        else:
            torch.testing.assert_close(
                mine[: reference.shape[0]], reference, atol=ATOL, rtol=ATOL, msg=lambda m: f"{name}[{b}]: {m}"
            )
        compared += 1
    return compared


def test_converter_consumes_every_key_and_reports_the_alias(converted):
    stage2, stage1, report = converted
    reference_keys = set(load_file(str(FIXTURE / "state_dict.safetensors")))
    assert set(report.loaded) | set(report.dropped) == reference_keys
    assert all("alias" in reason for reason in report.dropped.values())


def test_padded_batch_reproduces_each_utterance_run_alone(converted, io, single):
    stage2, stage1, _ = converted
    outputs = run_all_outputs(stage2, stage1, io["inputs.x"], io["inputs.x_lens"])
    batch_size = io["inputs.x"].shape[0]
    compared = sum(compare_with_single(outputs, single, b, b) for b in range(batch_size))
    assert compared >= batch_size * 20  # every encoder, stack, layer and head output was checked


def test_each_utterance_alone_reproduces_the_reference(converted, io, single):
    stage2, stage1, _ = converted
    for b in range(io["inputs.x"].shape[0]):
        length = int(io["inputs.x_lens"][b])
        outputs = run_all_outputs(stage2, stage1, io["inputs.x"][b : b + 1, :length], io["inputs.x_lens"][b : b + 1])
        assert compare_with_single(outputs, single, b, 0) >= 20


def test_predictor_and_joiner_reproduce_the_reference(converted, io, single):
    stage2, stage1, _ = converted
    for b in range(io["inputs.x"].shape[0]):
        encoder_out = single[f"single.{b}.encoder_out"]
        outputs = predictor_outputs(
            stage2, io["inputs.sos_y_padded"][b : b + 1], io["inputs.decoder_context"][b : b + 1], encoder_out
        )
        assert compare_with_single(outputs, single, b, 0) == 5
