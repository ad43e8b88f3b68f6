"""MT2KDFeatureExtractor: icefall's Kaldi fbank, input layouts, batching, saving and input errors."""

import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi
from safetensors.numpy import load_file

from processing_mt2kd import MT2KDFeatureExtractor, load_audio


@pytest.fixture(scope="module")
def extractor() -> MT2KDFeatureExtractor:
    return MT2KDFeatureExtractor()


@pytest.fixture(scope="module")
def speech(data_dir) -> np.ndarray:
    """2.99 s of 16 kHz read speech, float32 in [-1, 1]."""
    waveform, _ = load_audio(
        data_dir / "speech_misc/librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav"
    )
    return waveform


def features(extractor, audio, **kwargs) -> np.ndarray:
    kwargs.setdefault("sampling_rate", 16000)
    return extractor(audio, **kwargs)["input_features"]


def test_matches_icefall_fbank_reference(extractor, fixtures_dir):
    path = Path(
        os.environ.get("MT2KD_FBANK_FIXTURE", fixtures_dir / "icefall_parity_tiny" / "fbank_reference.safetensors")
    )
    reference = load_file(path)
    count = len([key for key in reference if key.startswith("wave.")])
    assert count > 0

    for index in range(count):
        computed = features(extractor, reference[f"wave.{index}"])[0]
        expected = reference[f"fbank.{index}"]
        assert computed.shape == expected.shape
        assert np.abs(computed - expected).max() < 1e-3


def test_long_input_equals_torchaudio_snip_edges_false(extractor, speech):
    direct = torchaudio.compliance.kaldi.fbank(
        torch.from_numpy(speech)[None],
        num_mel_bins=80,
        dither=0.0,
        snip_edges=False,
        low_freq=20,
        high_freq=-400,
        energy_floor=0.0,
    ).numpy()
    np.testing.assert_array_equal(features(extractor, speech)[0], direct)


@pytest.mark.parametrize("num_samples", [80, 159, 240, 399, 400, 16000, 16079, 16080])
def test_frame_count_follows_kaldi_snip_edges_false(extractor, num_samples):
    # Kaldi (and icefall's kaldifeat) mirror the signal at both ends, so even 5 ms of audio gives a frame.
    waveform = np.random.default_rng(num_samples).uniform(-0.1, 0.1, num_samples).astype(np.float32)
    computed = features(extractor, waveform)
    assert computed.shape == (1, (num_samples + 80) // 160, 80)
    assert extractor.num_frames(num_samples) == computed.shape[1]
    assert np.isfinite(computed).all()


REAL_RECORDINGS = [
    "fsdd/recordings/0_george_0.wav",
    "an4/wav/fash/an253-fash-b.wav",
    "speech_misc/ljspeech/LJ003-0182.wav",
    "sound_events/freesound_ibm/typing.wav",
    "speech_misc/jfk/jfk.flac",
    "speech_misc/librispeech/198-209-0000.hq.ogg",
]


@pytest.mark.parametrize("relative_path", REAL_RECORDINGS, ids=lambda path: path.split("/")[-1])
def test_real_recordings_give_sensible_features(extractor, data_dir, relative_path):
    waveform, sample_rate = load_audio(data_dir / relative_path)

    computed = features(extractor, waveform, sampling_rate=sample_rate)[0]

    assert computed.dtype == np.float32
    assert computed.shape == (extractor.num_frames(len(waveform)), 80)
    assert np.isfinite(computed).all()
    # log mel power of audio in [-1, 1]: floored at log(float32 eps) ~ -15.9, loud bins a few units above 0
    assert computed.min() >= -16.0 and 0.0 < computed.max() < 15.0
    # frames differ over time (not a constant or silent signal)
    assert computed.mean(axis=1).std() > 0.5


def test_batch_equals_one_at_a_time_on_valid_frames(extractor, speech):
    clips = [speech, speech[:8000], speech[5000:30000]]

    batch = extractor(clips, sampling_rate=16000, return_tensors="np")

    lengths = [extractor.num_frames(len(clip)) for clip in clips]
    assert batch["input_features"].shape == (3, max(lengths), 80)
    np.testing.assert_array_equal(batch["attention_mask"].sum(axis=1), lengths)
    for row, (clip, length) in enumerate(zip(clips, lengths)):
        np.testing.assert_array_equal(batch["input_features"][row, :length], features(extractor, clip)[0])
        assert (batch["input_features"][row, length:] == np.float32(math.log(1e-10))).all()
        assert not batch["attention_mask"][row, length:].any()


def test_padding_value_is_configurable(speech):
    extractor = MT2KDFeatureExtractor(padding_value=0.0)
    batch = extractor([speech, speech[:1600]], sampling_rate=16000)
    assert (batch["input_features"][1, 10:] == 0.0).all()


def test_pytorch_tensors_out(extractor, speech):
    batch = extractor([speech, speech[:1600]], sampling_rate=16000, return_tensors="pt")
    assert batch["input_features"].dtype == torch.float32
    assert batch["input_features"].shape == (2, 299, 80)
    assert batch["attention_mask"].shape == (2, 299)


def test_padding_false_gives_one_array_per_recording(extractor, speech):
    batch = extractor([speech, speech[:1600]], sampling_rate=16000, padding=False)
    assert [f.shape for f in batch["input_features"]] == [(299, 80), (10, 80)]


def test_numpy_torch_and_list_inputs_agree(extractor, speech):
    clip = speech[:4000]
    expected = features(extractor, clip)
    np.testing.assert_array_equal(features(extractor, torch.from_numpy(clip)), expected)
    np.testing.assert_array_equal(features(extractor, clip.tolist()), expected)
    np.testing.assert_array_equal(features(extractor, [torch.from_numpy(clip)])[0], expected[0])
    np.testing.assert_array_equal(features(extractor, clip.astype(np.float64)), expected)


def test_int16_pcm_is_scaled_to_unit_range(extractor, speech):
    pcm = np.round(speech * 32767).astype(np.int16)
    np.testing.assert_array_equal(features(extractor, pcm), features(extractor, pcm.astype(np.float32) / 32768))


def test_int32_pcm_is_scaled_to_unit_range(extractor, speech):
    pcm = np.round(speech * 2**31 * 0.99).astype(np.int32)
    np.testing.assert_array_equal(features(extractor, pcm), features(extractor, pcm.astype(np.float32) / 2**31))


def test_stereo_is_down_mixed_in_the_layout_the_caller_names(extractor, speech):
    left, right = speech, np.roll(speech, 400) * 0.5
    expected = features(extractor, ((left + right) / 2).astype(np.float32))

    channels_first = np.stack([left, right])
    np.testing.assert_allclose(features(extractor, channels_first, channel_axis=0), expected, atol=1e-4)
    np.testing.assert_allclose(features(extractor, channels_first.T, channel_axis=-1), expected, atol=1e-4)
    np.testing.assert_allclose(
        features(extractor, torch.from_numpy(channels_first), channel_axis=0), expected, atol=1e-4
    )
    np.testing.assert_allclose(
        features(extractor, [channels_first.T, speech], channel_axis=1)[0], expected[0], atol=1e-4
    )


@pytest.mark.parametrize("relative_path", ["fsdd/recordings/0_george_0.wav", "speech_misc/jfk/jfk.flac"])
def test_other_rates_are_resampled_to_16k(extractor, data_dir, relative_path):
    native, native_rate = load_audio(data_dir / relative_path, target_sample_rate=None, mono=False)
    at_16k, _ = load_audio(data_dir / relative_path)
    assert native_rate in (8000, 44100)

    computed = features(extractor, native, sampling_rate=native_rate, channel_axis=0)  # (channels, samples)

    np.testing.assert_allclose(computed, features(extractor, at_16k), atol=1e-4)
    duration_s = native.shape[-1] / native_rate
    assert abs(computed.shape[1] - 100 * duration_s) <= 1


def test_missing_sampling_rate_warns_and_assumes_16k(extractor, speech, caplog):
    with caplog.at_level(logging.WARNING):
        computed = extractor(speech)["input_features"]
    assert "sampling_rate" in caplog.text and "16000" in caplog.text
    np.testing.assert_array_equal(computed, features(extractor, speech))


def test_save_load_round_trip(tmp_path, speech):
    extractor = MT2KDFeatureExtractor(padding_value=-5.0)
    extractor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()

    reloaded = MT2KDFeatureExtractor.from_pretrained(tmp_path)

    assert reloaded.to_dict() == extractor.to_dict()
    assert reloaded.padding_value == -5.0
    np.testing.assert_array_equal(features(reloaded, speech), features(extractor, speech))


BAD_INPUTS = {
    "empty array": (np.zeros(0, dtype=np.float32), "empty"),
    "empty list": ([], "empty list"),
    "empty recording in a batch": ([np.ones(800, dtype=np.float32), np.zeros(0)], "recording 1 .* empty"),
    "NaN": (np.array([0.1] * 799 + [np.nan], dtype=np.float32), "NaN or infinite"),
    "inf": (np.array([np.inf] + [0.1] * 799, dtype=np.float32), "NaN or infinite"),
    "strings": (["a", "b"], "non-numeric"),
    "booleans": (np.ones(800, dtype=bool), "non-numeric"),
    "complex": (np.ones(800, dtype=np.complex64), "complex"),
    "text": ("speech.wav", "expected audio as"),
    "scalar": (np.float32(0.5), "expected audio as"),
    "0-d array": (np.array(0.5, dtype=np.float32), r"shape \(\)"),
    "3-d array": (np.zeros((2, 2, 800), dtype=np.float32), r"shape \(2, 2, 800\)"),
    "channels-last recording without channel_axis": (np.zeros((16000, 2), dtype=np.float32), "channel_axis=-1"),
    "2-D recording in a list without channel_axis": ([np.zeros((2, 800), dtype=np.float32)], "channel_axis=0"),
    "int64": (np.arange(800), "int64"),
    "too short": (np.zeros(79, dtype=np.float32), "too short"),
}


@pytest.mark.parametrize("audio, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_refused_with_a_reason(extractor, audio, message):
    with pytest.raises(ValueError, match=message):
        extractor(audio, sampling_rate=16000)


@pytest.mark.parametrize("sampling_rate", [0, -16000, "16k"])
def test_bad_sampling_rate_is_refused(extractor, speech, sampling_rate):
    with pytest.raises(ValueError, match="sampling_rate must be a positive number"):
        extractor(speech, sampling_rate=sampling_rate)
