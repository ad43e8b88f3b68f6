"""MT2KDFeatureExtractor batches: a stacked 2-D array is a batch (transformers' convention), channels only on request."""

import numpy as np
import pytest
import torch

from processing_mt2kd import MT2KDFeatureExtractor


@pytest.fixture(scope="module")
def extractor() -> MT2KDFeatureExtractor:
    return MT2KDFeatureExtractor()


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Three different 0.5 s clips of noise at 16 kHz."""
    generator = np.random.default_rng(0)
    return [(0.1 * generator.standard_normal(8000)).astype(np.float32) for _ in range(3)]


def test_stacked_2d_numpy_batch_is_a_batch_of_rows(extractor, clips):
    stacked = extractor(np.stack(clips), sampling_rate=16000)["input_features"]
    listed = extractor(clips, sampling_rate=16000)["input_features"]

    assert stacked.shape == (3, 50, 80)
    np.testing.assert_array_equal(stacked, listed)


def test_stacked_2d_torch_batch_is_a_batch_of_rows(extractor, clips):
    stacked = extractor(torch.from_numpy(np.stack(clips)), sampling_rate=16000)["input_features"]

    np.testing.assert_array_equal(stacked, extractor(clips, sampling_rate=16000)["input_features"])


def test_stacked_batch_of_many_clips_is_a_batch(extractor, clips):
    batch = np.stack(clips * 4)  # 12 rows: more than any channel count

    assert extractor(batch, sampling_rate=16000)["input_features"].shape == (12, 50, 80)


def test_channel_axis_reads_a_2d_array_as_one_recording(extractor, clips):
    mixed = extractor(np.mean(clips[:2], axis=0), sampling_rate=16000)["input_features"]

    channels_first = extractor(np.stack(clips[:2]), sampling_rate=16000, channel_axis=0)["input_features"]
    channels_last = extractor(np.stack(clips[:2], axis=1), sampling_rate=16000, channel_axis=-1)["input_features"]

    assert channels_first.shape == (1, 50, 80)
    np.testing.assert_allclose(channels_first, mixed, atol=1e-4)
    np.testing.assert_allclose(channels_last, mixed, atol=1e-4)


def test_channel_axis_reads_a_3d_array_as_a_batch_of_multichannel_recordings(extractor, clips):
    stereo = np.stack([np.stack(clips[:2]), np.stack(clips[1:])])  # (2 recordings, 2 channels, samples)

    computed = extractor(stereo, sampling_rate=16000, channel_axis=0)["input_features"]

    expected = extractor([np.mean(clips[:2], axis=0), np.mean(clips[1:], axis=0)], sampling_rate=16000)
    np.testing.assert_allclose(computed, expected["input_features"], atol=1e-4)


def test_channel_axis_keeps_a_1d_recording_mono(extractor, clips):
    computed = extractor(clips[0], sampling_rate=16000, channel_axis=-1)["input_features"]

    np.testing.assert_array_equal(computed, extractor(clips[0], sampling_rate=16000)["input_features"])


def test_channels_last_recording_without_channel_axis_is_refused_with_the_fix(extractor, clips):
    with pytest.raises(ValueError, match=r"8000 recordings of 2 samples.*channel_axis=-1"):
        extractor(np.stack(clips[:2], axis=1), sampling_rate=16000)


@pytest.mark.parametrize("channel_axis", [2, -2, "last"])
def test_bad_channel_axis_is_refused(extractor, clips, channel_axis):
    with pytest.raises(ValueError, match="channel_axis must be"):
        extractor(clips[0], sampling_rate=16000, channel_axis=channel_axis)
