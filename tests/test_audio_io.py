"""Audio decoding through soundfile, down-mixing, PCM scaling and resampling (`processing_mt2kd.audio_io`)."""


import numpy as np
import pytest
import soundfile
import torch

from processing_mt2kd.audio_io import (
    MAX_CHANNELS,
    AudioDecodeError,
    downmix_to_mono,
    load_audio,
    pcm_to_float,
    resample,
)

# One file of each kind in ../shared/data: (path, native rate, channels); format and subtype in the comments
RECORDINGS = [
    ("fsdd/recordings/0_george_0.wav", 8000, 1),  # PCM16 wav, 8 kHz
    ("an4/wav/fash/an253-fash-b.wav", 16000, 1),  # PCM16 wav, 16 kHz
    ("speech_misc/ljspeech/LJ003-0182.wav", 22050, 1),  # PCM16 wav, 22.05 kHz
    ("sound_events/esc50/1-100032-A-0.wav", 44100, 1),  # PCM16 wav, 44.1 kHz mono
    ("sound_events/freesound_ibm/typing.wav", 48000, 2),  # PCM16 wav, 48 kHz stereo
    ("speech_misc/jfk/jfk.flac", 44100, 2),  # PCM24 flac, 44.1 kHz stereo
    ("speech_misc/librispeech/2412-153948-0000.flac", 16000, 1),  # PCM16 flac, 16 kHz
    ("speech_misc/librispeech/198-209-0000.hq.ogg", 16000, 1),  # Ogg Vorbis, 16 kHz mono
    ("sound_events/librosa/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg", 44100, 2),  # Vorbis stereo
]


@pytest.mark.parametrize("relative_path, native_rate, channels", RECORDINGS, ids=lambda v: str(v).split("/")[-1])
def test_every_kind_of_recording_decodes_to_16k_mono_float(data_dir, relative_path, native_rate, channels):
    info = soundfile.info(data_dir / relative_path)
    assert (info.samplerate, info.channels) == (native_rate, channels)

    waveform, sample_rate = load_audio(data_dir / relative_path)

    assert sample_rate == 16000
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - info.frames * 16000 / native_rate) <= 1
    assert np.isfinite(waveform).all()
    assert 0.01 < np.abs(waveform).max() <= 1.05  # not silent, in [-1, 1] up to resampling overshoot


def test_mono_false_keeps_channels_first_at_the_native_rate(data_dir):
    waveform, sample_rate = load_audio(data_dir / "speech_misc/jfk/jfk.flac", target_sample_rate=None, mono=False)
    raw, _ = soundfile.read(data_dir / "speech_misc/jfk/jfk.flac", dtype="float32")

    assert sample_rate == 44100
    assert waveform.shape == (2, 485100)
    np.testing.assert_array_equal(waveform, raw.T)


def test_one_channel_file_with_mono_false_is_still_two_dimensional(data_dir):
    waveform, _ = load_audio(data_dir / "an4/wav/fash/an253-fash-b.wav", mono=False)
    assert waveform.shape == (1, 11200)


def test_mono_is_the_channel_average(data_dir):
    path = data_dir / "speech_misc/jfk/jfk.flac"
    stereo, _ = load_audio(path, target_sample_rate=None, mono=False)
    mono, _ = load_audio(path, target_sample_rate=None)
    np.testing.assert_allclose(mono, stereo.mean(axis=0), atol=1e-7)


def test_pcm16_file_is_scaled_by_32768(data_dir):
    path = data_dir / "an4/wav/fash/an253-fash-b.wav"
    pcm, _ = soundfile.read(path, dtype="int16")
    waveform, _ = load_audio(path)
    np.testing.assert_array_equal(waveform, pcm.astype(np.float32) / 32768)


def test_bytes_and_file_objects_decode_like_paths(data_dir):
    path = data_dir / "speech_misc/librispeech/198-209-0000.hq.ogg"
    from_path, _ = load_audio(path)
    from_bytes, _ = load_audio(path.read_bytes())
    with open(path, "rb") as file:
        from_file, _ = load_audio(file)
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_file)


@pytest.mark.skipif("MP3" not in soundfile.available_formats(), reason="libsndfile built without MP3")
def test_mp3_decodes(data_dir, tmp_path):
    source, _ = soundfile.read(data_dir / "an4/wav/fash/an253-fash-b.wav", dtype="float32")
    mp3_path = tmp_path / "an253.mp3"
    soundfile.write(mp3_path, source, 16000, format="MP3")

    waveform, sample_rate = load_audio(mp3_path)

    assert sample_rate == 16000
    assert abs(len(waveform) - len(source)) < 0.1 * 16000  # encoder delay / frame padding only
    assert np.abs(waveform).max() > 0.01


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.wav"
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        load_audio(missing)


def test_empty_file_is_named(tmp_path):
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match=r"empty\.flac.*empty \(0 bytes\)"):
        load_audio(empty)


def test_corrupt_file_is_named(data_dir, tmp_path):
    corrupt = tmp_path / "truncated.flac"
    corrupt.write_bytes((data_dir / "speech_misc/librispeech/2412-153948-0000.flac").read_bytes()[:1000])
    with pytest.raises(AudioDecodeError, match=r"cannot decode .*truncated\.flac"):
        load_audio(corrupt)


def test_unsupported_format_names_the_file_and_the_fix(tmp_path):
    not_audio = tmp_path / "voice.m4a"
    not_audio.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(AudioDecodeError, match=r"voice\.m4a.*convert"):
        load_audio(not_audio)


def test_file_without_samples_is_refused(tmp_path):
    path = tmp_path / "header_only.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioDecodeError, match="0 samples"):
        load_audio(path)


def test_empty_bytes_are_refused():
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio(b"")


def test_unreadable_source_type_is_refused():
    with pytest.raises(TypeError, match="list"):
        load_audio([0.0, 0.1])


@pytest.mark.parametrize("orig_rate", [8000, 44100])
def test_resample_keeps_a_tone_at_its_frequency(orig_rate):
    seconds = np.arange(orig_rate) / orig_rate
    tone = np.sin(2 * np.pi * 440 * seconds).astype(np.float32)

    resampled = resample(tone, orig_rate, 16000)

    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert resampled.dtype == np.float32 and resampled.shape == (16000,)
    # away from the edges, where the sinc filter sees zeros beyond the signal
    np.testing.assert_allclose(resampled[200:-200], expected[200:-200], atol=2e-3)


def test_resample_works_on_the_last_axis_of_torch_tensors():
    stereo = torch.randn(2, 8000)
    assert resample(stereo, 8000, 16000).shape == (2, 16000)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5])
def test_resample_refuses_bad_rates(rate):
    with pytest.raises(ValueError, match="positive whole number"):
        resample(np.zeros(100, dtype=np.float32), rate, 16000)


def test_downmix_reads_the_shorter_axis_as_channels():
    stereo = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    np.testing.assert_allclose(downmix_to_mono(stereo), stereo.mean(axis=0))
    np.testing.assert_allclose(downmix_to_mono(stereo.T), stereo.mean(axis=0))


def test_downmix_refuses_a_shape_without_a_clear_channel_axis():
    with pytest.raises(ValueError, match="cannot tell channels from samples"):
        downmix_to_mono(np.zeros((400, 400), dtype=np.float32))
    with pytest.raises(ValueError, match="list of arrays"):
        downmix_to_mono(np.zeros((MAX_CHANNELS + 1, 16000), dtype=np.float32))


@pytest.mark.parametrize(
    "dtype, full_scale, expected",
    [(np.int16, -32768, -1.0), (np.int32, 2**30, 0.5), (np.int8, 64, 0.5), (np.uint8, 192, 0.5)],
)
def test_pcm_is_scaled_to_unit_range(dtype, full_scale, expected):
    assert pcm_to_float(np.array([full_scale], dtype=dtype))[0] == pytest.approx(expected)


def test_int64_samples_are_refused():
    with pytest.raises(ValueError, match="int64"):
        pcm_to_float(np.array([1, 2, 3], dtype=np.int64))
