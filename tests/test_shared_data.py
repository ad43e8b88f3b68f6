"""Every real recording in ../shared/data decodes, gives finite features, and (outside the 3000
short digits, of which a sample is used) runs through the one-pass multi-task pipeline."""

from pathlib import Path

import numpy as np
import pytest
from transformers import pipeline

from processing_mt2kd import MT2KDFeatureExtractor, load_audio

from .conftest import DATA_DIR
from .test_pipelines import save_tiny_mt2kd_folder

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
ALL_RECORDINGS = sorted(p for p in DATA_DIR.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
DIGITS = [p for p in ALL_RECORDINGS if "fsdd" in p.parts]
PIPELINE_SAMPLE = [p for p in ALL_RECORDINGS if "fsdd" not in p.parts] + DIGITS[::100]


def test_every_recording_decodes_to_finite_16k_features():
    assert len(ALL_RECORDINGS) > 3000
    extractor = MT2KDFeatureExtractor()
    for path in ALL_RECORDINGS:
        waveform, rate = load_audio(path)
        assert rate == 16000 and waveform.ndim == 1 and waveform.size > 0, path
        features = extractor(waveform, sampling_rate=16000, return_tensors="np")["input_features"]
        assert features.shape[-1] == 80 and np.isfinite(features).all(), path


@pytest.fixture(scope="module")
def multitask(tmp_path_factory):
    return pipeline("mt2kd-multitask", model=str(save_tiny_mt2kd_folder(tmp_path_factory.mktemp("model"))))


@pytest.mark.slow
def test_recordings_of_every_kind_run_through_the_multitask_pipeline(multitask):
    for path in PIPELINE_SAMPLE:
        waveform, _ = load_audio(path)
        result = multitask({"raw": waveform, "sampling_rate": 16000})
        assert isinstance(result["text"], str) and result["tags"], path
        assert np.isfinite(np.asarray(result["speaker_embedding"])).all(), path
