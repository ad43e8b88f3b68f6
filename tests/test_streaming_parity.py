"""Parity of the causal (streaming) encoder with the authors' icefall code.

The fixture folder comes from MT2KD_CAUSAL_PARITY_FIXTURE (default
../shared/fixtures/icefall_parity_causal_tiny) and the model config from its README.json, so any
fixture of this format can be checked. Every chunk setting the README lists is tested:

- simulated streaming (one full forward with chunk-limited attention): each utterance alone must
  reproduce `io_single`'s `single.<b>.sim.<tag>.*`, and so must the padded batch, since our encoder
  is padding-invariant. The reference's own padded-batch outputs (`sim.<tag>.*`) are not: padding
  leaks into each utterance's last chunk there (README measured.sim_padding_invariance_...), so we
  match them on every frame before the last chunk;
- true streaming (the authors' streaming_decode.py chunk loop): each chunk's encoder output, the
  greedy transducer logits, tokens and token counts per chunk, and the cached states.
"""

import json
import math
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modeling_mt2kd.convert_icefall import convert_icefall_checkpoint
from modeling_mt2kd.decoding.streaming_recognizer import StreamingRecognizer
from modeling_mt2kd.decoding.streaming_search import StreamingGreedySearch
from modeling_mt2kd.encoder.streaming import LOG_EPS, chunk_input_frames
from modeling_mt2kd.encoder.streaming_state import EncoderStreamingState
from modeling_mt2kd.masks import lengths_to_mask

from .conftest import FIXTURES_DIR

FIXTURE = Path(os.environ.get("MT2KD_CAUSAL_PARITY_FIXTURE", FIXTURES_DIR / "icefall_parity_causal_tiny"))
README = json.loads((FIXTURE / "README.json").read_text()) if (FIXTURE / "README.json").is_file() else {}
SETTINGS = [(s["tag"], s["chunk_size"], s["left_context_frames"]) for s in README.get("config", {}).get("inference_settings", [])]
ATOL = RTOL = 1e-4
FRAME_LEVEL = ("encoder_out", "ctc_log_probs", "joiner.encoder_proj_out")
UTTERANCE_LEVEL = ("audio_tagging_logits", "speaker_embedding", "speaker_logits")

pytestmark = pytest.mark.skipif(not SETTINGS, reason=f"no causal parity fixture at {FIXTURE}")


@pytest.fixture(scope="module")
def converted():
    model, _, report = convert_icefall_checkpoint(FIXTURE / "state_dict.safetensors", FIXTURE / "README.json")
    return model, report


@pytest.fixture(scope="module")
def io():
    return load_file(str(FIXTURE / "io.safetensors"))


@pytest.fixture(scope="module")
def single():
    return load_file(str(FIXTURE / "io_single.safetensors"))


def use_setting(model, chunk_size: int, left_context_frames: int) -> None:
    model.config.chunk_size = chunk_size
    model.config.left_context_frames = left_context_frames


def simulated_outputs(model, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(features, attention_mask=lengths_to_mask(lengths, features.shape[1]).long())
    return {
        "encoder_out": out.last_hidden_state,
        "encoder_out_lens": out.attention_mask.sum(-1),
        "ctc_log_probs": out.ctc_logits.log_softmax(-1),
        "joiner.encoder_proj_out": model.transducer.joiner.encoder_proj(out.last_hidden_state),
        "audio_tagging_logits": out.tagging_logits,
        "speaker_embedding": out.speaker_embeddings,
        "speaker_logits": out.speaker_logits,
    }


def compare_with_single(outputs: dict, single: dict, tag: str, b: int, row: int) -> None:
    prefix = f"single.{b}.sim.{tag}."
    length = int(single[prefix + "encoder_out_lens"][0])
    assert int(outputs["encoder_out_lens"][row]) == length
    for name in FRAME_LEVEL:
        torch.testing.assert_close(
            outputs[name][row, :length], single[prefix + name][0, :length], atol=ATOL, rtol=RTOL,
            msg=lambda m: f"{tag} utterance {b} {name}: {m}",
        )
    for name in UTTERANCE_LEVEL:
        torch.testing.assert_close(
            outputs[name][row], single[prefix + name][0], atol=ATOL, rtol=RTOL, msg=lambda m: f"{tag} {b} {name}: {m}"
        )


def test_converter_loads_the_causal_checkpoint(converted):
    model, report = converted
    assert model.config.causal
    reference_keys = set(load_file(str(FIXTURE / "state_dict.safetensors")))
    assert set(report.loaded) | set(report.dropped) == reference_keys
    assert all("alias" in reason for reason in report.dropped.values())
    assert any(key.endswith("depthwise_conv.chunkwise_conv_scale") for key in report.loaded)
    # The checkpoint's training chunk lists become the config's training lists.
    training = README["config"]["params_training_construction"]
    assert model.config.training_chunk_sizes == tuple(int(v) for v in training["chunk_size"].split(","))


@pytest.mark.parametrize("tag, chunk_size, left_context_frames", SETTINGS)
def test_simulated_streaming_each_utterance_alone(converted, io, single, tag, chunk_size, left_context_frames):
    model, _ = converted
    use_setting(model, chunk_size, left_context_frames)
    for b, length in enumerate(io["inputs.x_lens"].tolist()):
        outputs = simulated_outputs(model, io["inputs.x"][b : b + 1, :length], io["inputs.x_lens"][b : b + 1])
        compare_with_single(outputs, single, tag, b, 0)


@pytest.mark.parametrize("tag, chunk_size, left_context_frames", SETTINGS)
def test_simulated_streaming_padded_batch(converted, io, single, tag, chunk_size, left_context_frames):
    model, _ = converted
    use_setting(model, chunk_size, left_context_frames)
    outputs = simulated_outputs(model, io["inputs.x"], io["inputs.x_lens"])
    assert outputs["encoder_out_lens"].tolist() == io[f"sim.{tag}.encoder_out_lens"].tolist()
    for b, length in enumerate(io["inputs.x_lens"].tolist()):
        compare_with_single(outputs, single, tag, b, b)
        # The reference's padded batch, up to the start of each utterance's last (padding-affected) chunk.
        frames_50hz = (length - 7) // 2
        complete_chunks = math.ceil(frames_50hz / chunk_size) - 1
        before_last_chunk = complete_chunks * chunk_size // 2
        assert before_last_chunk > 0
        for name in FRAME_LEVEL:
            torch.testing.assert_close(
                outputs[name][b, :before_last_chunk], io[f"sim.{tag}.{name}"][b, :before_last_chunk],
                atol=ATOL, rtol=RTOL, msg=lambda m: f"{tag} padded batch row {b} {name}: {m}",
            )
    if tag == SETTINGS[0][0]:  # stack outputs at 50 Hz are stored for the first setting
        with torch.no_grad():
            mask = lengths_to_mask(io["inputs.x_lens"], io["inputs.x"].shape[1]).long()
            hidden = model.mt2kd(io["inputs.x"], attention_mask=mask, output_hidden_states=True).hidden_states
        for i, stack_out in enumerate(hidden[1:]):
            for b, length in enumerate(io["inputs.x_lens"].tolist()):
                before_last_chunk = (math.ceil(((length - 7) // 2) / chunk_size) - 1) * chunk_size
                torch.testing.assert_close(
                    stack_out[b, :before_last_chunk], io[f"sim.{tag}.encoder.stack_out.{i}"][b, :before_last_chunk],
                    atol=ATOL, rtol=RTOL, msg=lambda m: f"stack {i} row {b}: {m}",
                )


@pytest.fixture(scope="module")
def stream():
    return load_file(str(FIXTURE / "io_stream.safetensors"))


def stream_buffer(io, b: int) -> torch.Tensor:
    """Utterance b's fbank followed by the authors' 13 + 30 LOG_EPS end-of-stream frames."""
    length = int(io["inputs.x_lens"][b])
    return torch.cat([io["inputs.x"][b, :length], torch.full((43, io["inputs.x"].shape[-1]), LOG_EPS)])


def run_chunk_loop(model, buffer: torch.Tensor, chunk_size: int, left_context_frames: int):
    """The authors' single-stream chunk loop through our public streaming API."""
    state = model.mt2kd.init_streaming_state(1, chunk_size, left_context_frames)
    search = StreamingGreedySearch(model.transducer.predictor, model.transducer.joiner)
    per_chunk = {"fed": [], "encoder_out": [], "lengths": [], "logits": [], "num_tokens": [], "states": []}
    for start in range(0, buffer.shape[0], 2 * chunk_size):
        chunk = buffer[start : start + chunk_input_frames(chunk_size)]
        output = model.mt2kd.streaming_forward(chunk.unsqueeze(0), state)
        state = output.state
        search.step(output.last_hidden_state)
        per_chunk["fed"].append(chunk)
        per_chunk["encoder_out"].append(output.last_hidden_state[0])
        per_chunk["lengths"].append(int(output.attention_mask.sum()))
        per_chunk["logits"].append(search.last_logits[0])
        per_chunk["num_tokens"].append(len(search.results[0].tokens))
        per_chunk["states"].append(state)
    return per_chunk, search.results[0]


@pytest.mark.parametrize("tag, chunk_size, left_context_frames", SETTINGS)
def test_true_streaming_matches_the_authors_chunk_loop(converted, io, stream, tag, chunk_size, left_context_frames):
    model, _ = converted
    for b in range(io["inputs.x"].shape[0]):
        prefix = f"stream.{tag}.single.{b}."
        per_chunk, result = run_chunk_loop(model, stream_buffer(io, b), chunk_size, left_context_frames)
        table = stream[prefix + "chunk_table"]
        assert len(per_chunk["encoder_out"]) == table.shape[0]
        assert per_chunk["lengths"] == table[:, 7].tolist()  # encoder_out_len column
        if prefix + "fed_chunks" in stream:
            for k, fed in enumerate(per_chunk["fed"]):
                reference = stream[prefix + "fed_chunks"][k]
                torch.testing.assert_close(fed, reference[: fed.shape[0]], atol=0, rtol=0)
                assert torch.all(reference[fed.shape[0] :] == LOG_EPS)  # the authors pad short chunks with LOG_EPS
        torch.testing.assert_close(
            torch.cat(per_chunk["encoder_out"]), stream[prefix + "encoder_out"], atol=ATOL, rtol=RTOL,
            msg=lambda m: f"{tag} utterance {b} encoder_out: {m}",
        )
        torch.testing.assert_close(
            torch.cat(per_chunk["logits"]), stream[prefix + "greedy_logits"], atol=ATOL, rtol=RTOL,
            msg=lambda m: f"{tag} utterance {b} greedy logits: {m}",
        )
        assert per_chunk["num_tokens"] == stream[prefix + "num_tokens_after_chunk"].tolist()
        assert result.tokens == stream[prefix + "tokens"].tolist()


def test_states_match_the_authors_after_the_first_and_the_last_chunk(converted, io, stream):
    model, _ = converted
    tag, chunk_size, left_context_frames = SETTINGS[0]
    prefix = f"stream.{tag}.single.0."
    per_chunk, _ = run_chunk_loop(model, stream_buffer(io, 0), chunk_size, left_context_frames)
    for name, state in (("states_after_chunk0", per_chunk["states"][0]), ("states_final", per_chunk["states"][-1])):
        ours = state.to_icefall_list()
        assert len(ours) == len([k for k in stream if k.startswith(prefix + name + ".")])
        for i, tensor in enumerate(ours):
            reference = stream[f"{prefix}{name}.{i}"]
            assert tuple(tensor.shape) == tuple(reference.shape), f"{name}.{i}"
            torch.testing.assert_close(
                tensor.to(reference.dtype), reference, atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}.{i}: {m}"
            )
        # The flat list round-trips into the same state.
        again = EncoderStreamingState.from_icefall_list(ours, chunk_size, left_context_frames).to_icefall_list()
        assert all(torch.equal(a, b) for a, b in zip(again, ours))


@pytest.mark.parametrize("tag, chunk_size, left_context_frames", SETTINGS)
def test_recognizer_fed_odd_pieces_gives_the_authors_tokens(converted, io, stream, tag, chunk_size, left_context_frames):
    model, _ = converted
    for b, length in enumerate(io["inputs.x_lens"].tolist()):
        recognizer = StreamingRecognizer(model, "greedy_search", chunk_size, left_context_frames)
        features = io["inputs.x"][b, :length]
        for start in range(0, length, 7):  # 70 ms pieces, unrelated to the chunk size
            recognizer.accept_features(features[start : start + 7])
        result = recognizer.finish()
        assert result.tokens == stream[f"stream.{tag}.single.{b}.tokens"].tolist()
        assert recognizer.chunks_done == stream[f"stream.{tag}.single.{b}.chunk_table"].shape[0]
        assert result.frames == sorted(result.frames)


@pytest.mark.parametrize("tag, chunk_size, left_context_frames", SETTINGS)
def test_batched_streams_match_the_authors_batched_decoding(converted, io, stream, tag, chunk_size, left_context_frames):
    """The 3 utterances decoded as one batch of streams, finished streams leaving the batch, with the authors'
    padding rule: short slices are padded with LOG_EPS and masked (via feature_lengths), unless every slice
    is short, then the padding counts as valid."""
    model, _ = converted
    num_streams = io["inputs.x"].shape[0]
    buffers = [stream_buffer(io, b) for b in range(num_streams)]
    states = {b: model.mt2kd.init_streaming_state(1, chunk_size, left_context_frames) for b in range(num_streams)}
    searches = {b: StreamingGreedySearch(model.transducer.predictor, model.transducer.joiner) for b in range(num_streams)}
    positions = {b: 0 for b in range(num_streams)}
    outputs = {b: [] for b in range(num_streams)}
    needed = chunk_input_frames(chunk_size)
    active = list(range(num_streams))
    while active:
        slices = [buffers[b][positions[b] : positions[b] + needed] for b in active]
        lengths = torch.tensor([len(s) for s in slices])
        features = torch.nn.utils.rnn.pad_sequence(slices, batch_first=True, padding_value=LOG_EPS)
        if features.shape[1] < needed:  # every slice is short: pad all, and the padding counts as valid
            lengths += needed - features.shape[1]
            features = torch.nn.functional.pad(features, (0, 0, 0, needed - features.shape[1]), value=LOG_EPS)
        state = EncoderStreamingState.concatenate([states[b] for b in active])
        output = model.mt2kd.streaming_forward(features, state, feature_lengths=lengths)
        for row, b in enumerate(active):
            states[b] = output.state.select([row])
            outputs[b].append(output.last_hidden_state[row])
            searches[b].step(output.last_hidden_state[row : row + 1])  # every frame, as the authors' search
            positions[b] += 2 * chunk_size
        active = [b for b in active if positions[b] < len(buffers[b])]
    for b in range(num_streams):
        prefix = f"stream.{tag}.batch.{b}."
        torch.testing.assert_close(
            torch.cat(outputs[b]), stream[prefix + "encoder_out"], atol=ATOL, rtol=RTOL,
            msg=lambda m: f"{tag} batched stream {b}: {m}",
        )
        assert searches[b].results[0].tokens == stream[prefix + "tokens"].tolist()
