"""sherpa-onnx's ONLINE (streaming) Zipformer2 transducer runs our exported causal model chunk by chunk and decodes
exactly the tokens of our own streaming greedy search.

Framing, as sherpa-onnx 2.0.1 does it (`online-recognizer-transducer-impl.h`): each call reads T = 2 * chunk_size + 13
fbank frames and advances by 2 * chunk_size; a chunk is decoded only while `processed + T < frames ready`, so a last
incomplete chunk is never decoded and no end-of-stream padding is added. Both sides therefore get the same 16 kHz
waveform followed by 0.5 s of silence, and our `StreamingRecognizer` is fed every fbank frame but the last and is not
`finish()`ed: it then decodes exactly the chunks sherpa-onnx decodes. sherpa-onnx computes its own fbank
(kaldi-native-fbank, the same options as ours; see tests/test_export_sherpa_onnx.py).
"""

import warnings

import numpy as np
import onnxruntime
import pytest

sherpa_onnx = pytest.importorskip("sherpa_onnx", reason="the export extra (pip install -e '.[export]') is not installed")

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from modeling_mt2kd.decoding.streaming_recognizer import StreamingRecognizer
from processing_mt2kd import MT2KDFeatureExtractor, load_audio
from training_mt2kd.export.streaming_export import (
    STREAMING_ENCODER_FILE,
    check_streaming_exportable,
    streaming_state_names,
    write_streaming_encoder,
)

from .fsdd_causal_model import CAUSAL, CHUNK_SIZE, LEFT_CONTEXT, evaluation_recordings

TAIL_SILENCE_S = 0.5
PIECE_S = 0.1  # audio is given to sherpa-onnx 100 ms at a time, decoding whatever is ready after each piece


@pytest.fixture(scope="module")
def exported(fsdd_causal_export):
    """The session's causal model (chunk 8 = 160 ms, left context 32; tests/fsdd_causal_model.py), its export."""
    model = MT2KDForMultiTask.from_pretrained(fsdd_causal_export.folder).eval()
    silence = np.zeros(int(TAIL_SILENCE_S * 16000), dtype=np.float32)
    audio = [np.concatenate([load_audio(path)[0], silence]) for path in evaluation_recordings()]
    return {"model": model, "folder": fsdd_causal_export.folder, "output": fsdd_causal_export.output,
            "report": fsdd_causal_export.report, "audio": audio}


def token_ids(output) -> dict[str, int]:
    """sherpa-onnx's result token (the piece with '▁' shown as a space) → its id in tokens.txt."""
    lines = (output / "tokens.txt").read_text(encoding="utf-8").splitlines()
    ids = {piece.replace("\u2581", " "): int(index) for piece, index in (line.split(" ") for line in lines)}
    assert len(ids) == len(lines), "two pieces read the same once '▁' is a space"
    return ids


def sherpa_streaming_tokens(recognizer, waveform: np.ndarray) -> list[str]:
    stream = recognizer.create_stream()
    piece = int(PIECE_S * 16000)
    for start in range(0, len(waveform), piece):
        stream.accept_waveform(16000, waveform[start : start + piece])
        while recognizer.is_ready(stream):
            recognizer.decode_stream(stream)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode_stream(stream)
    return list(recognizer.get_result_all(stream).tokens)


def our_streaming_tokens(model, folder, waveform: np.ndarray) -> list[int]:
    """Our StreamingRecognizer on sherpa-onnx's framing: every fbank frame but the last, no end-of-stream padding."""
    extractor = MT2KDFeatureExtractor.from_pretrained(folder)
    features = extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_features"][0]
    recognizer = StreamingRecognizer(model)
    return list(recognizer.accept_features(features[:-1]).tokens)


@pytest.mark.slow
def test_sherpa_onnx_online_recognizer_gives_exactly_our_streaming_greedy_tokens(exported):
    output = exported["output"]
    assert STREAMING_ENCODER_FILE in exported["report"].files
    recognizer = sherpa_onnx.OnlineRecognizer.from_transducer(
        str(output / "tokens.txt"), str(output / STREAMING_ENCODER_FILE), str(output / "decoder.onnx"),
        str(output / "joiner.onnx"), num_threads=1, decoding_method="greedy_search",
    )
    ids = token_ids(output)
    emitted = set()
    for waveform in exported["audio"]:
        theirs = [ids[piece] for piece in sherpa_streaming_tokens(recognizer, waveform)]
        ours = our_streaming_tokens(exported["model"], exported["folder"], waveform)
        assert theirs == ours
        emitted.update(ours)
    assert len(emitted) >= 3, f"the trained model should emit a mix of tokens; it emitted {emitted}"


@pytest.mark.slow
def test_streaming_encoder_file_matches_streaming_forward_and_sherpa_onnx_layout(exported):
    config = exported["model"].config
    entry = exported["report"].files[STREAMING_ENCODER_FILE]
    assert max(entry["max_abs_difference"].values()) < 1e-4
    session = onnxruntime.InferenceSession(str(exported["output"] / STREAMING_ENCODER_FILE))
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata["model_type"] == "zipformer2"
    assert int(metadata["decode_chunk_len"]) == 2 * CHUNK_SIZE and int(metadata["T"]) == 2 * CHUNK_SIZE + 13
    assert metadata["left_context_len"] == ",".join(str(LEFT_CONTEXT // f) for f in config.downsampling_factor)
    names = [value.name for value in session.get_inputs()]
    assert names == ["x", *streaming_state_names(config)]
    assert [value.name for value in session.get_outputs()] == ["encoder_out", *(f"new_{n}" for n in names[1:])]
    # The state shapes sherpa-onnx's GetEncoderInitStates builds from the metadata (batch 1).
    per_stack = lambda key: [int(v) for v in metadata[key].split(",")]  # noqa: E731
    expected = []
    for dim, heads, query, value, left, kernel, layers in zip(
        *(per_stack(key) for key in ("encoder_dims", "num_heads", "query_head_dims", "value_head_dims",
                                     "left_context_len", "cnn_module_kernels", "num_encoder_layers"))
    ):
        expected += [[left, 1, heads * query], [1, 1, left, 3 * dim // 4], [left, 1, heads * value],
                     [left, 1, heads * value], [1, dim, kernel // 2], [1, dim, kernel // 2]] * layers
    expected += [[1, 128, 3, (((config.num_mel_bins - 1) // 2) - 1) // 2], [1]]
    actual = [[1 if isinstance(d, str) else d for d in value.shape] for value in session.get_inputs()[1:]]
    assert actual == expected


def test_models_sherpa_onnx_cannot_stream_are_refused_with_the_reason(tmp_path):
    config = MT2KDConfig.from_preset("mt2kd-tiny", subsampling_channels=(8, 32, 64), **CAUSAL)
    model = MT2KDForMultiTask(config).eval()
    with pytest.raises(ValueError, match="128 channels"):
        check_streaming_exportable(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert write_streaming_encoder(model, tmp_path, "fp32", 18) == {}
    assert any("128 channels" in str(warning.message) for warning in caught)
    assert not (tmp_path / STREAMING_ENCODER_FILE).exists()
    no_transducer = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", use_transducer=False, **CAUSAL)).eval()
    with pytest.raises(ValueError, match="no transducer head"):
        check_streaming_exportable(no_transducer)
