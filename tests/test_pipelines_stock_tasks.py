"""The stock `automatic-speech-recognition` and `audio-classification` tasks on an MT2KD folder, as a user on a fresh
machine calls them: file paths without an ffmpeg binary, and the model card's `soundfile.read` -> `{"raw",
"sampling_rate"}` pattern on stereo, 6-channel, 8 kHz int16 and 44,101 Hz audio; the registered tasks of a folder
whose config.json names them in `custom_pipelines` load without `trust_remote_code`."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transformers import Wav2Vec2FeatureExtractor, pipeline
from transformers.utils import logging

import processing_mt2kd  # noqa: F401 - registers the MT2KD models, front end and pipelines
from processing_mt2kd.pipelines.audio_input import read_stock_pipeline_input
from processing_mt2kd.pipelines.stock_tasks import (
    MT2KDAudioTaggingPipeline,
    MT2KDSpeechRecognitionPipeline,
    _reads_audio_the_mt2kd_way,
)
from training_mt2kd.release.remote_code import add_custom_pipelines

from .test_pipelines import save_tiny_mt2kd_folder

SPEECH = "speech_misc/librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav"  # 16 kHz mono


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A tiny multi-task folder whose config.json lists its pipelines in `custom_pipelines`, as a saved demo or
    released model does."""
    logging.set_verbosity_error()
    folder = save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd"))
    add_custom_pipelines(folder)
    return folder


@pytest.fixture(scope="module")
def asr(model_folder):
    return pipeline("automatic-speech-recognition", model=str(model_folder))


@pytest.fixture(scope="module")
def tagger(model_folder):
    return pipeline("audio-classification", model=str(model_folder))


@pytest.fixture(scope="module")
def speech(data_dir) -> np.ndarray:
    waveform, rate = soundfile.read(data_dir / SPEECH, dtype="float32")
    assert rate == 16000 and waveform.ndim == 1
    return waveform[: 2 * 16000]


@pytest.fixture()
def no_ffmpeg(monkeypatch, tmp_path):
    """A PATH without an ffmpeg binary, as on a fresh machine."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("ffmpeg") is None


def test_the_folder_names_the_stock_tasks_in_custom_pipelines(model_folder):
    custom = json.loads((model_folder / "config.json").read_text())["custom_pipelines"]

    assert {"automatic-speech-recognition", "audio-classification", "mt2kd-multitask"} <= set(custom)


@pytest.mark.parametrize("task", ["mt2kd-multitask", "mt2kd-transducer-asr", "mt2kd-speaker-verification"])
def test_registered_tasks_load_a_local_folder_without_trust_remote_code(model_folder, task):
    pipe = pipeline(task, model=str(model_folder))

    assert type(pipe).__module__.startswith("processing_mt2kd.")


def test_stock_tasks_are_the_mt2kd_subclasses(asr, tagger):
    assert type(asr) is MT2KDSpeechRecognitionPipeline and asr.type == "ctc"
    assert type(tagger) is MT2KDAudioTaggingPipeline


def test_stock_asr_reads_a_file_path_without_ffmpeg(asr, data_dir, speech, no_ffmpeg):
    from_path = asr(str(data_dir / SPEECH), chunk_length_s=20, return_timestamps="word")

    assert from_path["text"] == asr({"raw": soundfile.read(data_dir / SPEECH)[0], "sampling_rate": 16000})["text"]
    assert isinstance(from_path["chunks"], list)


def test_stock_audio_classification_reads_a_file_path_without_ffmpeg(tagger, data_dir, no_ffmpeg):
    from_path = tagger(str(data_dir / SPEECH), top_k=3)
    from_bytes = tagger((data_dir / SPEECH).read_bytes(), top_k=3)

    assert from_path == from_bytes and len(from_path) == 3


def write_and_read(path: Path, samples: np.ndarray, rate: int, subtype: str, dtype: str) -> tuple[np.ndarray, int]:
    """The card's pattern: a file on disk, read back with `soundfile.read`."""
    soundfile.write(path, samples, rate, subtype=subtype)
    return soundfile.read(path, dtype=dtype)


def tag_scores(tagger, inputs) -> dict[str, float]:
    return {tag["label"]: tag["score"] for tag in tagger(inputs, top_k=None)}


@pytest.mark.parametrize("channels", [2, 6])
def test_card_pattern_down_mixes_multichannel_files(asr, tagger, speech, tmp_path, channels):
    audio, rate = write_and_read(tmp_path / "multi.wav", np.repeat(speech[:, None], channels, axis=1), 16000,
                                 "FLOAT", "float32")
    assert audio.shape == (len(speech), channels)  # channels last, as soundfile returns them

    mono = {"raw": speech, "sampling_rate": 16000}
    assert asr({"raw": audio, "sampling_rate": rate})["text"] == asr(dict(mono))["text"]
    multi_scores, mono_scores = tag_scores(tagger, {"raw": audio, "sampling_rate": rate}), tag_scores(tagger, mono)
    assert multi_scores.keys() == mono_scores.keys()
    np.testing.assert_allclose(list(multi_scores.values()), [mono_scores[k] for k in multi_scores], atol=1e-5)


def test_card_pattern_scales_8khz_int16_pcm(asr, tagger, speech, tmp_path):
    pcm = np.round(speech[::2] * 20000).astype(np.int16)
    audio, rate = write_and_read(tmp_path / "pcm.wav", pcm, 8000, "PCM_16", "int16")
    assert audio.dtype == np.int16 and rate == 8000

    as_float = {"raw": audio.astype(np.float32) / 32768, "sampling_rate": 8000}
    assert asr({"raw": audio, "sampling_rate": rate})["text"] == asr(dict(as_float))["text"]
    assert tag_scores(tagger, {"raw": audio, "sampling_rate": rate}) == pytest.approx(
        tag_scores(tagger, as_float), abs=1e-5
    )


def test_card_pattern_resamples_an_odd_rate_fast(asr, tagger):
    rate = 44101  # coprime with 16000: torchaudio's own kernel would have 16000 x 44101 weights (2.8 GB)
    audio = (0.1 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate)).astype(np.float32)

    start = time.monotonic()
    asr({"raw": audio, "sampling_rate": rate})
    tagger({"raw": audio, "sampling_rate": rate})
    assert time.monotonic() - start < 10  # measured 0.8 s on a shared 2-core machine; the stock path took 25 s


def test_asr_stride_of_a_dict_is_rescaled_with_the_rate(asr):
    inputs = {"raw": np.zeros(8000, np.float32), "sampling_rate": 8000, "stride": (800, 400), "id": 7}

    read = read_stock_pipeline_input(inputs, asr.feature_extractor)

    assert read["sampling_rate"] == 16000 and read["raw"].shape == (16000,)
    assert read["stride"] == (1600, 800) and read["id"] == 7
    assert inputs["sampling_rate"] == 8000  # the caller's dict is left as it was


def test_other_models_keep_the_stock_input_handling():
    assert not _reads_audio_the_mt2kd_way(Wav2Vec2FeatureExtractor())
