"""`datasets` audio columns without torchcodec: the README's pattern, `Audio(decode=False)` and soundfile decoding
through the pipelines, `load_audio` and the processor, on files of ../shared/data (paths and embedded bytes)."""

from pathlib import Path

import numpy as np
import pytest
from datasets import Audio, Dataset
from transformers import pipeline
from transformers.utils import logging

import processing_mt2kd  # noqa: F401 - registers the MT2KD models, front end and pipelines
from processing_mt2kd import MT2KDProcessor, load_audio

from .test_pipelines import save_tiny_mt2kd_folder

RECORDINGS = [
    "speech_misc/librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav",  # 16 kHz mono
    "speech_misc/jfk/jfk.flac",  # 44.1 kHz stereo
    "speech_misc/librispeech/198-209-0000.hq.ogg",
]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    logging.set_verbosity_error()
    return save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd"))


@pytest.fixture(scope="module")
def paths(data_dir) -> list[str]:
    return [str(data_dir / recording) for recording in RECORDINGS]


def undecoded(column: list) -> Dataset:
    return Dataset.from_dict({"audio": column}).cast_column("audio", Audio(decode=False))


def test_undecoded_column_holds_paths_or_bytes(paths):
    from_paths = undecoded(paths)[0]["audio"]
    from_bytes = undecoded([{"bytes": Path(paths[0]).read_bytes(), "path": None}])[0]["audio"]

    assert from_paths["path"] == paths[0] and from_paths["bytes"] is None
    assert from_bytes["bytes"] == Path(paths[0]).read_bytes()


def test_pipeline_reads_undecoded_examples_by_path_or_bytes(model_folder, paths):
    asr = pipeline("automatic-speech-recognition", model=str(model_folder))
    by_path = [asr(audio["bytes"] or audio["path"])["text"] for audio in undecoded(paths)["audio"]]
    embedded = undecoded([{"bytes": Path(path).read_bytes(), "path": None} for path in paths])
    by_bytes = [asr(audio["bytes"] or audio["path"])["text"] for audio in embedded["audio"]]

    assert by_path == by_bytes and len(by_path) == len(paths)


def test_processor_batches_undecoded_examples_decoded_by_load_audio(model_folder, paths):
    processor = MT2KDProcessor.from_pretrained(model_folder)
    waveforms = [load_audio(audio["bytes"] or audio["path"])[0] for audio in undecoded(paths)["audio"]]

    batch = processor(audio=waveforms, sampling_rate=16000, return_tensors="pt")

    assert batch["input_features"].shape[0] == len(paths) and batch["input_features"].shape[2] == 80
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert lengths == [processor.feature_extractor.num_frames(len(waveform)) for waveform in waveforms]


def test_map_adds_decoded_arrays_that_the_pipeline_takes(model_folder, paths):
    def decode(example):
        waveform, sampling_rate = load_audio(example["audio"]["path"], target_sample_rate=None, mono=False)
        return {"samples": waveform.T, "sampling_rate": sampling_rate}  # (samples, channels), as soundfile reads

    decoded = undecoded(paths).map(decode)
    tagger = pipeline("audio-classification", model=str(model_folder))

    for example, path in zip(decoded, paths):
        from_array = tagger({"raw": np.asarray(example["samples"], dtype=np.float32),
                             "sampling_rate": example["sampling_rate"]}, top_k=2)
        assert [tag["label"] for tag in from_array] == [tag["label"] for tag in tagger(path, top_k=2)]
