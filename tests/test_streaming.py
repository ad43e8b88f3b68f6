"""Streaming recognition on real recordings: incremental fbank, the generator API, the `mt2kd-streaming-asr`
pipeline, and clear errors for bad streaming input. Parity with the authors' code is in test_streaming_parity.py."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import pipeline

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from modeling_mt2kd.decoding import ctc_greedy_decode, greedy_search, modified_beam_search
from modeling_mt2kd.decoding.streaming_recognizer import TAIL_PADDING_FRAMES, StreamingRecognizer
from modeling_mt2kd.encoder.streaming import LOG_EPS, LOOKAHEAD_FBANK_FRAMES
from processing_mt2kd import MT2KDFeatureExtractor, train_bpe_tokenizer
from processing_mt2kd.audio_io import resample
from processing_mt2kd.pipelines.streaming_asr import stream_transcripts
from processing_mt2kd.streaming_features import StreamingFeatureExtractor, StreamingResampler

SENTENCES = ["HELLO WORLD", "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE", "THE QUICK BROWN FOX"]
CHUNK_SIZE, LEFT_CONTEXT = 8, 32
RECORDINGS = ["an4/wav/fash/an253-fash-b.wav", "fsdd/recordings/0_george_0.wav"]  # 16 kHz and 8 kHz


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("causal-mt2kd")
    tokenizer = train_bpe_tokenizer(SENTENCES, folder / "bpe", vocab_size=30)
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(
        "mt2kd-tiny", vocab_size=len(tokenizer), causal=True, chunk_size=CHUNK_SIZE, left_context_frames=LEFT_CONTEXT
    )
    MT2KDForMultiTask(config).eval().save_pretrained(folder)
    MT2KDFeatureExtractor().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def streaming_asr(model_folder):
    import processing_mt2kd  # noqa: F401  (registers the task)

    return pipeline("mt2kd-streaming-asr", model=str(model_folder))


def read(data_dir: Path, path: str) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(data_dir / path, dtype="float32")
    return audio, rate


def pieces(audio: np.ndarray, size: int):
    return (audio[start : start + size] for start in range(0, len(audio), size))


def simulated_streaming_tokens(model, features: np.ndarray, decoding_method: str = "greedy_search") -> list[int]:
    """Greedy tokens of ONE full forward with chunk-limited attention on the input a stream sees: the fbank, the
    end-of-stream LOG_EPS frames, and LOG_EPS up to a whole number of chunks (all frames valid)."""
    chunk_frames = 2 * CHUNK_SIZE
    padded = len(features) + LOOKAHEAD_FBANK_FRAMES + TAIL_PADDING_FRAMES
    num_chunks = -(-padded // chunk_frames)
    total = num_chunks * chunk_frames + LOOKAHEAD_FBANK_FRAMES
    inputs = torch.full((1, total, features.shape[1]), LOG_EPS)
    inputs[0, : len(features)] = torch.from_numpy(features)
    with torch.no_grad():
        encoder_out = model.mt2kd(inputs).last_hidden_state[:, : num_chunks * CHUNK_SIZE // 2]
    lengths = torch.tensor([encoder_out.shape[1]])
    search = greedy_search if decoding_method == "greedy_search" else modified_beam_search
    return search(encoder_out, lengths, model.transducer.predictor, model.transducer.joiner)[0].tokens


@pytest.mark.parametrize("path", RECORDINGS)
def test_incremental_fbank_equals_the_whole_recording_fbank(data_dir, path):
    audio, rate = read(data_dir, path)
    whole = MT2KDFeatureExtractor()(audio, sampling_rate=rate, return_tensors="np")["input_features"][0]
    for size in (37, rate // 10, 4001):  # pieces unrelated to the 10 ms hop
        stream = StreamingFeatureExtractor(sampling_rate=rate)
        streamed = np.concatenate([stream.accept_waveform(piece) for piece in pieces(audio, size)] + [stream.finish()])
        assert streamed.shape == whole.shape
        # Same samples, same frames; float rounding differs by block. At 8 kHz the resampled samples differ by
        # ~1e-8 (block-wise convolution), which the log of near-silent frames magnifies.
        np.testing.assert_allclose(streamed, whole, atol=1e-5 if rate == 16000 else 1e-3, rtol=0)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_streaming_resampler_equals_whole_signal_resampling(rate):
    signal = np.random.default_rng(0).standard_normal(rate // 3).astype(np.float32) * 0.1
    resampler = StreamingResampler(rate, 16000)
    streamed = np.concatenate([resampler.accept(piece) for piece in pieces(signal, 999)] + [resampler.finish()])
    np.testing.assert_allclose(streamed, resample(signal, rate, 16000), atol=1e-6, rtol=0)


@pytest.mark.parametrize("path", RECORDINGS)
def test_streamed_tokens_equal_the_same_models_simulated_streaming_tokens(data_dir, model_folder, streaming_asr, path):
    model, extractor, tokenizer = streaming_asr.model, streaming_asr.feature_extractor, streaming_asr.tokenizer
    audio, rate = read(data_dir, path)
    partials = list(stream_transcripts(model, extractor, tokenizer, pieces(audio, rate // 10), rate))
    features = extractor(audio, sampling_rate=rate, return_tensors="np")["input_features"][0]
    assert partials[-1]["is_final"] and not any(p["is_final"] for p in partials[:-1])
    assert partials[-1]["tokens"] == simulated_streaming_tokens(model, features)
    assert len(partials[-1]["tokens"]) > 0
    # Partial results only grow: each is a prefix of the next.
    for earlier, later in zip(partials, partials[1:]):
        assert later["tokens"][: len(earlier["tokens"])] == earlier["tokens"]


def test_streamed_modified_beam_search_equals_beam_search_on_the_simulated_stream(data_dir, streaming_asr):
    model, extractor, tokenizer = streaming_asr.model, streaming_asr.feature_extractor, streaming_asr.tokenizer
    audio, rate = read(data_dir, RECORDINGS[0])
    final = list(
        stream_transcripts(model, extractor, tokenizer, pieces(audio, 1000), rate, "modified_beam_search", beam=4)
    )[-1]
    features = extractor(audio, sampling_rate=rate, return_tensors="np")["input_features"][0]
    assert final["tokens"] == simulated_streaming_tokens(model, features, "modified_beam_search")


def test_streamed_ctc_equals_ctc_decoding_of_the_simulated_stream(data_dir, model_folder):
    model = MT2KDForMultiTask.from_pretrained(model_folder).eval()
    audio, rate = read(data_dir, RECORDINGS[0])
    features = MT2KDFeatureExtractor()(audio, sampling_rate=rate, return_tensors="np")["input_features"][0]
    recognizer = StreamingRecognizer(model, "ctc_greedy")
    for start in range(0, len(features), 11):
        recognizer.accept_features(torch.from_numpy(features[start : start + 11]))
    streamed = recognizer.finish()
    padded = len(features) + LOOKAHEAD_FBANK_FRAMES + TAIL_PADDING_FRAMES
    num_chunks = -(-padded // (2 * CHUNK_SIZE))
    inputs = torch.full((1, num_chunks * 2 * CHUNK_SIZE + LOOKAHEAD_FBANK_FRAMES, 80), LOG_EPS)
    inputs[0, : len(features)] = torch.from_numpy(features)
    with torch.no_grad():
        logits = model(inputs).ctc_logits[:, : num_chunks * CHUNK_SIZE // 2]
    reference = ctc_greedy_decode(logits, torch.tensor([logits.shape[1]]), model.config.blank_id)[0]
    assert (streamed.tokens, streamed.frames) == (reference.tokens, reference.frames)


def test_pipeline_transcribes_a_recording_as_a_stream(data_dir, streaming_asr):
    audio, rate = read(data_dir, RECORDINGS[0])
    result = streaming_asr(str(data_dir / RECORDINGS[0]), return_timestamps="word", return_partials=True)
    live = list(streaming_asr.stream(pieces(audio, 1600), sampling_rate=rate, return_timestamps="word"))
    assert result["text"] == live[-1]["text"] == result["partials"][-1]["text"]
    # Words end within the decoded frames: the audio's, then the end-of-stream padding (43 fbank frames) up to a
    # whole chunk (a random model also emits tokens there; the authors' decoder decodes those frames too).
    fbank_frames = MT2KDFeatureExtractor().num_frames(len(audio) * 16000 // rate)
    decoded_s = -(-(fbank_frames + LOOKAHEAD_FBANK_FRAMES + TAIL_PADDING_FRAMES) // (2 * CHUNK_SIZE)) * 2 * CHUNK_SIZE / 100
    assert result["chunks"]
    for chunk in result["chunks"]:
        start, end = chunk["timestamp"]
        assert 0.0 <= start < end <= decoded_s + 1e-9


# Bad input: every case raises with a message naming the problem.


def test_empty_audio_pieces_and_audio_after_the_end_are_refused():
    stream = StreamingFeatureExtractor()
    with pytest.raises(ValueError, match="empty audio chunk"):
        stream.accept_waveform(np.zeros(0, dtype=np.float32))
    stream.accept_waveform(np.zeros(1600, dtype=np.float32))
    stream.finish()
    with pytest.raises(RuntimeError, match="stream has ended"):
        stream.accept_waveform(np.zeros(160, dtype=np.float32))


def test_a_sample_rate_change_mid_stream_is_refused():
    stream = StreamingFeatureExtractor()
    stream.accept_waveform(np.zeros(800, dtype=np.float32), sampling_rate=8000)
    with pytest.raises(ValueError, match="sample rate changed mid-stream from 8000 Hz to 16000 Hz"):
        stream.accept_waveform(np.zeros(1600, dtype=np.float32), sampling_rate=16000)


def test_recognizer_refuses_features_after_finish(streaming_asr):
    recognizer = StreamingRecognizer(streaming_asr.model)
    recognizer.accept_features(torch.zeros(50, 80))
    recognizer.finish()
    with pytest.raises(RuntimeError, match="stream has finished"):
        recognizer.accept_features(torch.zeros(10, 80))


def test_streaming_forward_refuses_empty_and_oversized_chunks(streaming_asr):
    encoder = streaming_asr.model.mt2kd
    state = encoder.init_streaming_state(1)
    with pytest.raises(ValueError, match="empty feature chunk"):
        encoder.streaming_forward(torch.zeros(1, 0, 80), state)
    with pytest.raises(ValueError, match="at most 29 fbank frames"):
        encoder.streaming_forward(torch.zeros(1, 40, 80), state)


def test_streaming_forward_refuses_a_state_of_another_batch_size_or_model(streaming_asr):
    encoder = streaming_asr.model.mt2kd
    with pytest.raises(ValueError, match="holds 2 streams but the chunk has batch size 1"):
        encoder.streaming_forward(torch.zeros(1, 29, 80), encoder.init_streaming_state(2))
    other = MT2KDForMultiTask(
        MT2KDConfig.from_preset("mt2kd-tiny", num_encoder_layers=(1, 1, 1, 1), causal=True, chunk_size=8,
                                left_context_frames=32)
    ).eval()
    with pytest.raises(ValueError, match="made by another model"):
        encoder.streaming_forward(torch.zeros(1, 29, 80), other.mt2kd.init_streaming_state(1))
    wider = MT2KDForMultiTask(
        MT2KDConfig.from_preset("mt2kd-tiny", encoder_dim=(32, 48, 80, 48), causal=True, chunk_size=8,
                                left_context_frames=32)
    ).eval()
    with pytest.raises(ValueError, match="made by another model"):
        encoder.streaming_forward(torch.zeros(1, 29, 80), wider.mt2kd.init_streaming_state(1))


def test_streaming_needs_a_causal_model_in_eval_mode_and_valid_chunk_settings(streaming_asr):
    non_causal = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny")).eval()
    with pytest.raises(ValueError, match="streaming needs a causal model"):
        non_causal.mt2kd.init_streaming_state(1)
    encoder = streaming_asr.model.mt2kd
    with pytest.raises(ValueError, match="chunk_size must be a positive multiple of 4"):
        encoder.init_streaming_state(1, chunk_size=6)
    with pytest.raises(ValueError, match="left_context_frames must be a positive multiple"):
        encoder.init_streaming_state(1, left_context_frames=-1)
    encoder.train()
    try:
        with pytest.raises(RuntimeError, match="eval mode"):
            encoder.streaming_forward(torch.zeros(1, 29, 80), encoder.init_streaming_state(1))
    finally:
        encoder.eval()


def test_config_refuses_chunk_settings_the_encoder_cannot_stream():
    with pytest.raises(ValueError, match="chunk_size=6 must be -1 .* or a positive multiple of 4"):
        MT2KDConfig.from_preset("mt2kd-tiny", causal=True, chunk_size=6)
    with pytest.raises(ValueError, match="left_context_frames=30 must be"):
        MT2KDConfig.from_preset("mt2kd-tiny", causal=True, left_context_frames=30)
    with pytest.raises(ValueError, match="fewer than stack"):
        MT2KDConfig.from_preset("mt2kd-tiny", causal=True, chunk_size=4, left_context_frames=4)


def test_cli_transcribe_streaming_prints_partials_and_reports_the_final_text(capsys, data_dir, model_folder, streaming_asr):
    from training_mt2kd.cli.main import main

    path = data_dir / RECORDINGS[0]
    status = main(["transcribe", "--model", str(model_folder), str(path), "--streaming", "--stream_chunk_s", "0.2"])
    captured = capsys.readouterr()
    assert status == 0
    report = json.loads(captured.out)
    expected = streaming_asr(str(path), stream_chunk_s=0.2)["text"]
    assert report["results"][0]["text"] == expected
    partial_lines = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert partial_lines[-1] == f"[final] {expected}"


def test_training_samples_a_chunk_setting_per_batch_and_trains_the_causal_encoder():
    from modeling_mt2kd.encoder.chunk_masks import choose_chunking

    config = MT2KDConfig.from_preset("mt2kd-tiny", causal=True, chunk_size=8, left_context_frames=32)
    seen = {choose_chunking(config, training=True) for _ in range(200)}
    # (chunk_size, left_context_chunks) pairs from the training lists 16,32,64,-1 x 64,128,256,-1.
    assert (-1, -1) in seen and (16, 4) in seen and (64, 1) in seen
    assert choose_chunking(config, training=False) == (8, 4)
    model = MT2KDForMultiTask(config).train()
    features = torch.randn(2, 120, 80)
    labels = torch.tensor([[3, 4, 5], [6, 7, -100]])
    for _ in range(3):  # a new chunk setting per call; every parameter of the causal convolutions gets a gradient
        model.zero_grad()
        model(features, labels=labels).loss.backward()
        scale = model.mt2kd.encoder.stacks[0].layers[0].conv_module1.depthwise_conv.chunkwise_conv_scale
        assert scale.grad is not None and torch.isfinite(scale.grad).all()


def test_finetune_trains_a_causal_model_from_the_yaml_and_it_streams(tmp_path, data_dir):
    """Stage 2 with `model.overrides: {causal: true, ...}`: a few steps on FSDD, then the saved folder streams."""
    from tests.test_finetune import finetune_arguments
    from training_mt2kd.recipe import finetune

    causal = {"vocab_size": 20, "causal": True, "chunk_size": 16, "left_context_frames": 64,
              "training_chunk_sizes": [16, 32, -1], "training_left_context_frames": [64, -1]}
    final = finetune.main(finetune_arguments(tmp_path / "run", 3, "--set", f"model.overrides={json.dumps(causal)}", task="asr"))
    config = MT2KDConfig.from_pretrained(final)
    assert config.causal and config.training_chunk_sizes == (16, 32, -1) and config.chunk_size == 16
    asr = pipeline("mt2kd-streaming-asr", model=str(final))
    result = asr(str(data_dir / RECORDINGS[1]), return_partials=True)
    assert result["partials"][-1]["is_final"] and isinstance(result["text"], str)


def test_kd_distils_into_a_causal_student_from_the_yaml(tmp_path):
    """Stage 1 with a causal student (`model.overrides: {causal: true, ...}`), two steps."""
    from tests.test_kd import LABELS, kd_arguments
    from tests.tiny_teachers import save_tiny_teachers
    from training_mt2kd.recipe import kd

    teachers = save_tiny_teachers(tmp_path / "teachers", LABELS)
    overrides = "{id2label: {0: Speech, 1: Music, 2: Dog, 3: Bird}, causal: true, chunk_size: 16, left_context_frames: 64}"
    final = kd.main(kd_arguments(teachers, tmp_path / "run", 2, "--set", f"model.overrides={overrides}"))
    config = MT2KDConfig.from_pretrained(final)
    assert config.causal and config.training_chunk_sizes == (16, 32, 64, -1)


def test_tags_and_speaker_embedding_at_the_end_of_the_stream_equal_the_simulated_stream(data_dir, model_folder):
    model = MT2KDForMultiTask.from_pretrained(model_folder).eval()
    audio, rate = read(data_dir, RECORDINGS[0])
    features = MT2KDFeatureExtractor()(audio, sampling_rate=rate, return_tensors="np")["input_features"][0]
    recognizer = StreamingRecognizer(model, keep_encoder_frames=None)
    recognizer.accept_features(torch.from_numpy(features))
    recognizer.finish()
    streamed = recognizer.utterance_outputs()
    padded = len(features) + LOOKAHEAD_FBANK_FRAMES + TAIL_PADDING_FRAMES
    num_chunks = -(-padded // (2 * CHUNK_SIZE))
    inputs = torch.full((1, num_chunks * 2 * CHUNK_SIZE + LOOKAHEAD_FBANK_FRAMES, 80), LOG_EPS)
    inputs[0, : len(features)] = torch.from_numpy(features)
    audio_frames = ((len(features) - 7) // 2 + 1) // 2
    with torch.no_grad():
        hidden = model.mt2kd(inputs).last_hidden_state[:, :audio_frames]
        mask = torch.ones(1, audio_frames, dtype=torch.bool)
        torch.testing.assert_close(streamed["tagging_logits"], model.tagging_head(hidden, mask)[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(streamed["speaker_embedding"], model.speaker_head(hidden, mask)[0], atol=1e-4, rtol=1e-4)
    window = StreamingRecognizer(model, keep_encoder_frames=20)
    window.accept_features(torch.from_numpy(features))
    assert window.kept_frames.shape[0] <= 20 and window.utterance_outputs()["tagging_logits"].shape == (model.config.num_labels,)


def test_stream_transcripts_adds_tags_and_speaker_embedding_to_the_final_result(data_dir, model_folder, streaming_asr):
    model = MT2KDForMultiTask.from_pretrained(model_folder).eval()
    audio, rate = read(data_dir, RECORDINGS[0])
    results = list(stream_transcripts(
        model, streaming_asr.feature_extractor, streaming_asr.tokenizer, pieces(audio, 1600), rate,
        top_k_tags=3, return_speaker_embedding=True,
    ))
    assert "tags" not in results[0] and len(results[-1]["tags"]) == 3
    assert len(results[-1]["speaker_embedding"]) == model.config.speaker_embedding_dim
    with pytest.raises(ValueError, match="no audio-tagging head"):
        list(stream_transcripts(streaming_asr.model, streaming_asr.feature_extractor, streaming_asr.tokenizer,
                                pieces(audio, 1600), rate, top_k_tags=3))
