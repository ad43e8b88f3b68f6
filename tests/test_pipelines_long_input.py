"""Long recordings through the tagging (windowed and stock task), speaker and multi-task pipelines: overlapping
windows, pooled results, one owner of the window parameters, and peak memory that does not grow with the duration
(issue 16, item 1)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification, pipeline
from transformers.utils import logging

import processing_mt2kd  # noqa: F401 - registers the MT2KD pipelines
from processing_mt2kd.pipelines import DEFAULT_WINDOW_LENGTH_S, MT2KDAudioClassificationPipeline, WindowSettings
from processing_mt2kd.pipelines.stock_tasks import MT2KDAudioTaggingPipeline
from processing_mt2kd.pipelines.windowing import kept_samples

from .test_pipelines import EncoderCalls, save_tiny_mt2kd_folder

SAMPLING_RATE = 16000
SAMPLES_PER_FRAME = 640
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    logging.set_verbosity_error()
    return save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd"))


@pytest.fixture(scope="module")
def tagger(model_folder):
    return pipeline("mt2kd-audio-classification", model=str(model_folder))


@pytest.fixture(scope="module")
def verifier(model_folder):
    return pipeline("mt2kd-speaker-verification", model=str(model_folder))


@pytest.fixture(scope="module")
def multitask(model_folder):
    return pipeline("mt2kd-multitask", model=str(model_folder))


@pytest.fixture(scope="module")
def stock_tagger(model_folder):
    """transformers' own `audio-classification` task on the MT2KD folder (the card's usage)."""
    return pipeline("audio-classification", model=str(model_folder))


@pytest.fixture(scope="module")
def pipelines(tagger, verifier, multitask, stock_tagger):
    return {"tagging": tagger, "speaker": verifier, "multitask": multitask, "stock tagging": stock_tagger}


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32)


# Window layout


@pytest.mark.parametrize("num_samples", [1, 16000, 480000, 480001, 1_000_003, 16000 * 3600])
@pytest.mark.parametrize("settings", [WindowSettings(), WindowSettings(10.0, 0.0), WindowSettings(4.0, 2.0)])
def test_kept_spans_of_the_windows_tile_the_recording_exactly(num_samples, settings):
    windows = list(settings.windows(num_samples, SAMPLING_RATE, SAMPLES_PER_FRAME))
    position = 0
    for window in windows:
        assert window.start + window.stride_left == position
        assert window.end - window.start <= settings.window_length_s * SAMPLING_RATE + SAMPLES_PER_FRAME
        position += kept_samples(window)
    assert position == num_samples and windows[-1].end == num_samples


def test_a_short_last_window_takes_more_context_not_more_kept_audio():
    # 10 s windows without overlap: 20.01 s leaves a 10 ms tail, too short for the model (and for a clip result).
    windows = list(WindowSettings(10.0, 0.0).windows(320160, SAMPLING_RATE, SAMPLES_PER_FRAME))
    last = windows[-1]
    assert last.end - last.start >= 5 * SAMPLING_RATE and kept_samples(last) == 160
    assert last.start % SAMPLES_PER_FRAME == 0 and last.stride_left % SAMPLES_PER_FRAME == 0


BAD_WINDOW_PARAMETERS = [
    ({"window_length_s": 0}, "window_length_s must be > 0"),
    ({"window_length_s": -5}, "window_length_s must be > 0"),
    ({"window_length_s": float("nan")}, "window_length_s must be a number"),
    ({"window_length_s": 10, "window_overlap_s": 10}, "shorter than window_length_s"),
    ({"window_overlap_s": -1}, "window_overlap_s must be >= 0"),
]
POOLING_PIPELINES = ["tagging", "multitask", "stock tagging"]  # the speaker pipeline averages embeddings, no pooling


@pytest.mark.parametrize(
    "name, arguments, message",
    [(name, arguments, message) for name in ["speaker", *POOLING_PIPELINES] for arguments, message in BAD_WINDOW_PARAMETERS]
    + [(name, {"window_pooling": "median"}, "window_pooling must be one of") for name in POOLING_PIPELINES],
)
def test_bad_window_parameters_are_refused_with_the_fix(pipelines, name, arguments, message):
    # One owner of the checks (windowing.window_call_parameters): every windowed pipeline says the same.
    with pytest.raises(ValueError, match=message):
        pipelines[name](noise(1.0), **arguments)


def test_a_short_window_overlaps_by_a_sixth_of_its_length_by_default():
    assert WindowSettings.from_arguments(6.0) == WindowSettings(6.0, 1.0)
    assert WindowSettings.from_arguments() == WindowSettings(DEFAULT_WINDOW_LENGTH_S, 5.0)


# Results


def test_a_recording_within_one_window_gives_the_whole_recording_result(model_folder, tagger):
    waveform = noise(12.0)
    stock = pipeline("audio-classification", model=str(model_folder))
    expected = stock({"raw": waveform, "sampling_rate": SAMPLING_RATE}, top_k=3)
    result = tagger(waveform, top_k=3)
    assert [tag["label"] for tag in result] == [tag["label"] for tag in expected]
    np.testing.assert_allclose([tag["score"] for tag in result], [tag["score"] for tag in expected], atol=1e-5)


def test_long_recording_runs_the_encoder_one_window_at_a_time(tagger, verifier, multitask):
    waveform = noise(95.0)
    max_frames = int(DEFAULT_WINDOW_LENGTH_S * 100) + 1  # fbank frames of one window
    for pipe in (tagger, verifier, multitask):
        with EncoderCalls(pipe.model) as calls:
            pipe(waveform)
        assert len(calls.frames) == 4 and max(calls.frames) <= max_frames  # 30 s windows, 25 s apart


def test_pooled_tags_are_the_mean_of_the_windows_logits_weighted_by_their_kept_audio(tagger):
    waveform = noise(70.0, seed=1)
    result = tagger(waveform, top_k=None, return_windows=True, function_to_apply="none")
    windows = list(WindowSettings().windows(len(waveform), SAMPLING_RATE, SAMPLES_PER_FRAME))
    assert [window["timestamp"] for window in result["windows"]] == [
        (window.start / SAMPLING_RATE, window.end / SAMPLING_RATE) for window in windows
    ]
    weights = np.array([kept_samples(window) for window in windows], dtype=np.float64)
    per_window = [{tag["label"]: tag["score"] for tag in window["labels"]} for window in result["windows"]]
    for tag in result["labels"]:
        expected = sum(w * scores[tag["label"]] for w, scores in zip(weights, per_window)) / weights.sum()
        assert tag["score"] == pytest.approx(expected, abs=1e-5)


def test_max_pooling_gives_each_label_its_highest_window_score(tagger):
    result = tagger(noise(70.0, seed=2), top_k=None, window_pooling="max", return_windows=True)
    for tag in result["labels"]:
        best = max(s["score"] for window in result["windows"] for s in window["labels"] if s["label"] == tag["label"])
        assert tag["score"] == pytest.approx(best, abs=1e-6)


def test_long_speaker_embedding_is_the_weighted_mean_of_the_window_embeddings(verifier):
    waveform = noise(70.0, seed=3)
    result = verifier(waveform, return_windows=True)
    windows = list(WindowSettings().windows(len(waveform), SAMPLING_RATE, SAMPLES_PER_FRAME))
    weights = np.array([kept_samples(window) for window in windows], dtype=np.float64)
    window_embeddings = np.stack([window["embedding"] for window in result["windows"]])
    np.testing.assert_allclose(result["embedding"], weights @ window_embeddings / weights.sum(), atol=1e-5)
    np.testing.assert_allclose(verifier.embed([waveform, noise(2.0)], batch_size=3)[0], result["embedding"], atol=1e-5)


def test_multitask_long_recording_agrees_with_the_single_task_pipelines(tagger, verifier, multitask):
    waveform = noise(70.0, seed=4)
    result = multitask(waveform, top_k=3)
    tags = tagger(waveform, top_k=3)
    assert [tag["label"] for tag in result["tags"]] == [tag["label"] for tag in tags]
    np.testing.assert_allclose(result["speaker_embedding"], verifier(waveform)["embedding"], atol=1e-5)
    assert isinstance(result["text"], str)


def test_multitask_windowed_ctc_transcript_equals_decoding_each_kept_span(multitask):
    # Windows of 8 s with 2 s overlap: the text is the CTC decoding of the frames each window keeps, joined.
    waveform = noise(20.0, seed=5)
    windowed = multitask(waveform, window_length_s=8.0, window_overlap_s=2.0, asr_decoder="ctc")["text"]
    model, tokenizer, extractor = multitask.model, multitask.tokenizer, multitask.feature_extractor
    ids = []
    for window in WindowSettings(8.0, 2.0).windows(len(waveform), SAMPLING_RATE, SAMPLES_PER_FRAME):
        features = extractor(waveform[window.start : window.end], sampling_rate=SAMPLING_RATE, return_tensors="pt")
        with torch.no_grad():
            frame_ids = model(**features).ctc_logits.argmax(-1)[0].tolist()
        first = window.stride_left // SAMPLES_PER_FRAME
        ids += frame_ids[first : first + kept_samples(window) // SAMPLES_PER_FRAME]
    assert windowed == tokenizer.decode(ids)


def test_the_windowed_tagging_task_is_registered_and_the_stock_task_keeps_its_class(tagger, stock_tagger):
    from transformers.pipelines.audio_classification import AudioClassificationPipeline

    assert isinstance(tagger, MT2KDAudioClassificationPipeline)
    assert type(stock_tagger) is MT2KDAudioTaggingPipeline and isinstance(stock_tagger, AudioClassificationPipeline)


# The stock audio-classification task: windowed for MT2KD models


def test_stock_tagging_of_a_long_recording_runs_the_encoder_one_window_at_a_time(stock_tagger):
    # Before: the whole 95 s in one encoder pass (memory growing with the square of the duration).
    with EncoderCalls(stock_tagger.model) as calls:
        stock_tagger({"raw": noise(95.0), "sampling_rate": SAMPLING_RATE})
    assert len(calls.frames) == 4 and max(calls.frames) <= int(DEFAULT_WINDOW_LENGTH_S * 100) + 1


@pytest.mark.parametrize("options", [{}, {"window_pooling": "max", "function_to_apply": "softmax"},
                                     {"window_length_s": 20.0, "window_overlap_s": 4.0, "return_windows": True}])
def test_stock_tagging_gives_the_windowed_tagging_result(tagger, stock_tagger, options):
    waveform = noise(70.0, seed=6)
    expected = tagger(waveform, top_k=4, **options)
    result = stock_tagger({"raw": waveform, "sampling_rate": SAMPLING_RATE}, top_k=4, **options)
    assert result == expected


def test_stock_tagging_of_a_batch_equals_one_at_a_time(stock_tagger):
    recordings = [noise(70.0, seed=7), noise(3.0, seed=8), noise(40.0, seed=9)]
    one_at_a_time = [stock_tagger(recording, top_k=3) for recording in recordings]
    batched = stock_tagger(recordings, top_k=3, batch_size=3)
    for result, expected in zip(batched, one_at_a_time):
        assert [tag["label"] for tag in result] == [tag["label"] for tag in expected]
        np.testing.assert_allclose([t["score"] for t in result], [t["score"] for t in expected], atol=1e-5)


@pytest.fixture(scope="module")
def wav2vec2_tagger(tmp_path_factory):
    """The stock task with a (tiny, random) model of another family."""
    config = Wav2Vec2Config(
        vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, classifier_proj_size=8, num_labels=3,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("wav2vec2")
    Wav2Vec2ForSequenceClassification(config).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return pipeline("audio-classification", model=str(folder))


def test_other_models_in_the_stock_task_are_run_as_transformers_runs_them(wav2vec2_tagger):
    from transformers.pipelines.audio_classification import AudioClassificationPipeline

    waveform = noise(2.0, seed=10)
    stock = AudioClassificationPipeline(model=wav2vec2_tagger.model, feature_extractor=wav2vec2_tagger.feature_extractor)
    assert wav2vec2_tagger(waveform, top_k=2) == stock(waveform, top_k=2)
    assert wav2vec2_tagger([waveform, waveform[:8000]], batch_size=2, top_k=2)[0] == stock(waveform, top_k=2)
    with pytest.raises(ValueError, match="window_length_s: windows are for MT2KD models"):
        wav2vec2_tagger(waveform, window_length_s=10.0)


# Memory

MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, torch
    from transformers import pipeline
    from transformers.utils import logging
    import processing_mt2kd

    logging.set_verbosity_error()
    torch.set_num_threads(1)
    folder, task = sys.argv[1], sys.argv[2]
    pipe = pipeline(task, model=folder)
    rng = np.random.default_rng(0)
    peak_mib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pipe((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))  # warm-up: two full windows
    peaks = {}
    for minutes in (1, 4):
        pipe((0.1 * rng.standard_normal(16000 * 60 * minutes)).astype(np.float32))
        peaks[minutes] = peak_mib()
    print(json.dumps(peaks))
    """
)


@pytest.mark.parametrize(
    "task", ["mt2kd-audio-classification", "mt2kd-speaker-verification", "mt2kd-multitask", "audio-classification"]
)
def test_peak_memory_does_not_grow_from_one_to_four_minutes(model_folder, task):
    # Before windowing, 4 minutes through the tiny model raised the peak by ~4.4 GB (whole-recording attention);
    # windowed, the peak may grow only by a few copies of the recording (4 min float32 = 15 MiB).
    finished = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(model_folder), task],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    peaks = json.loads(finished.stdout.strip().splitlines()[-1])
    assert peaks["4"] - peaks["1"] < 80, peaks


# The minimum length: one figure, from configuration_mt2kd.MIN_INPUT_FRAMES


def test_the_front_end_states_the_models_minimum_length_from_one_owner(model_folder, tagger):
    from configuration_mt2kd import MIN_INPUT_FRAMES

    extractor = tagger.feature_extractor
    assert extractor.num_frames(extractor.min_model_input_samples) == MIN_INPUT_FRAMES
    assert extractor.num_frames(extractor.min_model_input_samples - 1) == MIN_INPUT_FRAMES - 1


@pytest.mark.parametrize("task", ["mt2kd-audio-classification", "mt2kd-speaker-verification", "mt2kd-multitask"])
def test_audio_shorter_than_the_model_takes_is_refused_with_that_figure(model_folder, task):
    pipe = pipeline(task, model=str(model_folder))
    with pytest.raises(ValueError, match=r"needs at least 9 fbank frames; pass at least 1360 samples \(85 ms\)"):
        pipe(noise(0.05))
    pipe(noise(1360 / SAMPLING_RATE))  # exactly the minimum works
