"""Fuzzing: whatever audio or ids users feed the feature extractor, the tokenizer and the pipelines —
any shape, dtype, rate or length, silence, clipping, huge values, NaN or inf — they answer with a result or a
documented error (ValueError / TypeError with a message), never a crash or a hang, and long inputs cost bounded
memory."""

import contextlib
import io
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from transformers import pipeline
from transformers.utils import logging

from processing_mt2kd import MT2KDFeatureExtractor, MT2KDTokenizer, feature_extraction_mt2kd, resample
from processing_mt2kd.audio_io import AudioDecodeError

from .conftest import REPO_ROOT
from .test_pipelines import save_tiny_mt2kd_folder

DOCUMENTED_ERRORS = (ValueError, TypeError)  # AudioDecodeError is a ValueError
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
STANDARD_RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000]
ODD_RATES = [7919, 12347, 44101, 96001]  # no large common divisor with 16000: the resampler's worst case
# Repeated entries make usable audio common enough that most examples reach the model, not only the input checks.
DTYPES = ["float32", "float32", "int16", "float16", "float64", "int8", "int32", "uint8", "int64", "bool", "complex64"]
CONTENTS = ["noise", "noise", "noise", "silence", "clipped", "dc", "huge", "nan", "inf"]


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail with TimeoutError (not a documented error) if the block runs longer than `seconds`: a hang."""

    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def answers_or_refuses(call, *args, seconds: float = 20, **kwargs):
    """The result of `call`, or None when it raised a documented error with a message."""
    with time_limit(seconds):
        try:
            result = call(*args, **kwargs)
        except DOCUMENTED_ERRORS as error:
            assert str(error).strip(), f"{type(error).__name__} without a message"
            event(f"refused: {type(error).__name__}: {str(error)[:50]}")
            return None
    event("answered")
    return result


@st.composite
def audio_arrays(draw, max_samples: int = 4000, dtypes=DTYPES, mono_only: bool = False) -> np.ndarray:
    """One recording: any dtype, 1-D or 2-D (either channel layout) or 3-D, any length from 0, and content that is
    noise, silence, clipped, a DC offset, huge, or holds NaN / inf."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    # The edges (empty, 1 sample, one fbank frame, the model's 9 frames) and, mostly, ordinary lengths.
    samples = draw(st.sampled_from([0, 1, 79, 80, 81, 1439, 1440, *range(2000, max_samples + 1, 97)]))
    layouts = [(samples,), (samples,), (1, samples), (2, samples), (samples, 2), (3, samples), (2, 2, samples // 4 + 1)]
    shape = draw(st.sampled_from(layouts[:1] if mono_only else layouts))
    content = draw(st.sampled_from(CONTENTS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = {
        "noise": rng.uniform(-1, 1, shape),
        "silence": np.zeros(shape),
        "clipped": np.sign(rng.uniform(-1, 1, shape)) * 1.0,
        "dc": np.full(shape, 0.5),
        "huge": rng.uniform(-1, 1, shape) * 1e30,
        "nan": rng.uniform(-1, 1, shape),
        "inf": rng.uniform(-1, 1, shape),
    }[content]
    if content in ("nan", "inf") and values.size:
        values.flat[int(rng.integers(values.size))] = np.nan if content == "nan" else np.inf
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        scaled = np.nan_to_num(values * info.max, nan=0.0, posinf=info.max, neginf=info.min)
        return np.clip(scaled, info.min, info.max).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


@st.composite
def containers(draw, array: np.ndarray):
    """The same recording as numpy, a torch tensor, a list of numbers, or a batch of two."""
    kind = draw(st.sampled_from(["numpy", "torch", "list", "batch"]))
    if kind == "torch" and array.dtype not in (np.uint16,):
        return torch.from_numpy(array.copy())
    if kind == "list" and array.ndim == 1:
        return array.tolist()
    if kind == "batch":
        return [array, np.zeros(800, np.float32)]
    return array


# Feature extractor


@pytest.fixture(scope="module")
def extractor() -> MT2KDFeatureExtractor:
    return MT2KDFeatureExtractor()


@FUZZ
@given(data=st.data(), rate=st.sampled_from(STANDARD_RATES + ODD_RATES) | st.integers(1000, 200000))
def test_feature_extractor_gives_finite_features_or_a_documented_error(extractor, data, rate):
    array = data.draw(audio_arrays())
    inputs = data.draw(containers(array))
    features = answers_or_refuses(extractor, inputs, sampling_rate=rate, return_tensors="np")
    if features is None:
        return
    values, mask = features["input_features"], features["attention_mask"]
    assert values.dtype == np.float32 and values.shape[-1] == 80 and values.shape[:2] == mask.shape
    assert np.isfinite(values).all()
    assert mask.sum(axis=1).min() >= 1


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.full(16000, 1e30, np.float32), "gives non-finite features: its samples reach 1e\\+30"),
        (np.full(16000, 1e30, np.float64), "gives non-finite features"),
        (np.full(16000, 1e300, np.float64), "beyond the float32 range"),
    ],
)
def test_huge_samples_are_refused_rather_than_turned_into_nan_features(extractor, samples, message):
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=message):
        extractor(samples, sampling_rate=16000)


def test_long_recordings_are_computed_in_blocks_equal_to_one_pass(extractor, monkeypatch):
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 45 + 123).astype(np.float32)
    in_blocks = extractor(audio, sampling_rate=16000)["input_features"]
    monkeypatch.setattr(feature_extraction_mt2kd, "FRAMES_PER_BLOCK", 10**9)
    one_pass = extractor(audio, sampling_rate=16000)["input_features"]
    assert in_blocks.shape == one_pass.shape == (1, 4501, 80)  # (samples + 80) // 160
    np.testing.assert_allclose(in_blocks, one_pass, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "sampling_rate", [0, -16000, 1.5, 22050.5, float("nan"), float("inf"), True, "16000", 10**12, torch.tensor(16000)]
)
def test_feature_extractor_refuses_an_impossible_sampling_rate(extractor, sampling_rate):
    with time_limit(10), pytest.raises(ValueError, match="(?i)sampling_rate|sample.rate|Hz"):
        extractor(np.zeros(16000, np.float32), sampling_rate=sampling_rate)


@pytest.mark.parametrize("rate", ODD_RATES)
def test_odd_rates_resample_to_the_right_length_and_pitch(rate):
    seconds = 2.0
    time_s = np.arange(int(rate * seconds)) / rate
    tone = np.sin(2 * np.pi * 440.0 * time_s).astype(np.float32)
    with time_limit(10):
        resampled = resample(tone, rate, 16000)
    assert abs(len(resampled) - len(tone) * 16000 / rate) <= 1 + 1e-5 * len(resampled)
    spectrum = np.abs(np.fft.rfft(resampled * np.hanning(len(resampled))))
    assert abs(np.argmax(spectrum) * 16000 / len(resampled) - 440.0) < 1.0


def run_measured(script: str, timeout_s: float = 240) -> list[float]:
    """Run `script` in a fresh interpreter (with `peak_increase_mib(call)` defined) and return the numbers it
    prints on its last line."""
    helpers = textwrap.dedent('''
        import resource, sys
        from pathlib import Path
        import numpy as np, torch
        torch.set_num_threads(1)

        def status_bytes(field):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

        def peak_increase_mib(call):
            """Peak resident memory during call() above the memory before it (the kernel's high-water mark)."""
            before = status_bytes("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
            call()
            return (status_bytes("VmHWM") - before) / 2**20

        def limit_address_space(extra_bytes):
            """Fail an allocation, rather than exhaust the machine, beyond `extra_bytes` more address space."""
            limit = status_bytes("VmSize") + extra_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    ''')
    result = subprocess.run([sys.executable, "-c", helpers + textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=timeout_s, cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return [float(value) for value in result.stdout.strip().splitlines()[-1].split()]


def test_resampling_from_any_rate_needs_little_memory():
    # torchaudio's kernel for coprime rates has (16000 x rate) weights: 2.8 GB at 44101 Hz, unless bounded.
    [seconds] = run_measured(f'''
        import time
        from processing_mt2kd import resample
        limit_address_space(512 * 2**20)
        start = time.monotonic()
        for rate in {ODD_RATES + [1_000_003, 2]}:
            resample(np.zeros(rate * 3 if rate > 100 else 300, np.float32), rate, 16000)
        print(time.monotonic() - start)
    ''')
    assert seconds < 20


def test_feature_extraction_of_ten_minutes_stays_within_a_bounded_working_memory():
    minute_mib, ten_minutes_mib = run_measured('''
        from processing_mt2kd import MT2KDFeatureExtractor
        extractor = MT2KDFeatureExtractor()
        extractor(np.zeros(16000, np.float32), sampling_rate=16000)
        rng = np.random.default_rng(0)
        peaks = []
        for minutes in (1, 10):
            audio = rng.uniform(-0.5, 0.5, minutes * 60 * 16000).astype(np.float32)
            peaks.append(peak_increase_mib(lambda: extractor(audio, sampling_rate=16000)))
            del audio
        print(*peaks)
    ''')
    # Measured: 32 MiB for 1 minute, 86 MiB for 10 minutes (the features alone are 18 MiB; computing them in one
    # pass took 530 MiB). The bound leaves room for allocator noise.
    assert ten_minutes_mib < 160, (minute_mib, ten_minutes_mib)


# Tokenizer


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    logging.set_verbosity_error()
    return save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd"))


@pytest.fixture(scope="module")
def tokenizer(model_folder) -> MT2KDTokenizer:
    return MT2KDTokenizer.from_pretrained(model_folder)


@FUZZ
@given(text=st.text(max_size=200))
def test_tokenizer_encodes_and_decodes_any_text(tokenizer, text):
    with time_limit(10):
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert all(0 <= index < len(tokenizer) for index in ids)
        assert isinstance(tokenizer.decode(ids), str)


@FUZZ
@given(ids=st.lists(st.integers(-200, 200), max_size=100), as_tensor=st.booleans(), group_tokens=st.booleans())
def test_tokenizer_decodes_any_ids_or_names_the_bad_one(tokenizer, ids, as_tensor, group_tokens):
    token_ids = torch.tensor(ids, dtype=torch.long) if as_tensor else ids
    text = answers_or_refuses(tokenizer.decode, token_ids, group_tokens=group_tokens, output_word_offsets=True)
    if text is None:
        assert any(not 0 <= index < len(tokenizer) for index in ids)
    else:
        assert isinstance(text.text, str)


# Pipelines


@pytest.fixture(scope="module")
def pipelines(model_folder) -> dict:
    tasks = ["automatic-speech-recognition", "audio-classification", "mt2kd-transducer-asr",
             "mt2kd-speaker-verification", "mt2kd-multitask"]
    return {task: pipeline(task, model=str(model_folder)) for task in tasks}


@settings(FUZZ, max_examples=40)
@given(data=st.data(), task=st.sampled_from(["mt2kd-transducer-asr", "mt2kd-speaker-verification",
                                             "mt2kd-multitask"]))
def test_mt2kd_pipelines_answer_any_audio_or_raise_a_documented_error(pipelines, data, task):
    array = data.draw(audio_arrays(max_samples=8000))
    rate = data.draw(st.sampled_from(STANDARD_RATES + ODD_RATES))
    form = data.draw(st.sampled_from(["dict", "dict", "array", "wav bytes", "other bytes"]))
    if form == "wav bytes" and array.ndim == 1 and array.dtype in (np.float32, np.float64, np.int16, np.int32):
        encoded = io.BytesIO()
        soundfile.write(encoded, array, rate, format="WAV")
        inputs = encoded.getvalue()
    elif form == "other bytes":
        inputs = array.tobytes()[:64]
    elif form == "array":
        inputs = array
    else:
        inputs = {"raw": array, "sampling_rate": rate}
    result = answers_or_refuses(pipelines[task], inputs)
    if result is not None:
        assert isinstance(result, dict) and result


@settings(FUZZ, max_examples=25)
@given(data=st.data(), task=st.sampled_from(["automatic-speech-recognition", "audio-classification"]))
def test_stock_pipelines_answer_any_float_audio_or_raise_a_documented_error(pipelines, data, task):
    # transformers resamples for the stock pipelines itself (before our feature extractor sees the audio), so: only
    # rates it resamples cheaply, and no empty audio at other rates (its resampler raises a RuntimeError on it).
    array = data.draw(audio_arrays(max_samples=8000, dtypes=["float16", "float32", "float64"], mono_only=True))
    rate = data.draw(st.sampled_from(STANDARD_RATES) if array.size else st.just(16000))
    result = answers_or_refuses(pipelines[task], {"raw": array, "sampling_rate": rate})
    if result is not None:
        assert result


def test_a_corrupt_file_is_a_documented_error(pipelines, tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(AudioDecodeError, match="corrupt.wav"):
        pipelines["mt2kd-multitask"](str(tmp_path / "corrupt.wav"))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["automatic-speech-recognition", "mt2kd-transducer-asr"])
def test_chunked_asr_memory_does_not_grow_with_the_length_of_the_audio(model_folder, task):
    script = f'''
        from transformers import pipeline
        from transformers.utils import logging
        import processing_mt2kd  # registers the MT2KD models, front end and pipelines
        logging.set_verbosity_error()
        asr = pipeline({task!r}, model={str(model_folder)!r})
        rng = np.random.default_rng(0)
        asr({{"raw": rng.uniform(-0.1, 0.1, 12 * 16000).astype(np.float32), "sampling_rate": 16000}},
            chunk_length_s=10.0)
        audio = rng.uniform(-0.1, 0.1, int(sys.argv[1]) * 16000).astype(np.float32)
        print(peak_increase_mib(lambda: asr({{"raw": audio, "sampling_rate": 16000}}, chunk_length_s=10.0)))
    '''
    peaks = {}
    for seconds in (60, 300):
        [peaks[seconds]] = run_measured(script.replace("sys.argv[1]", str(seconds)))
    # Measured peaks, 60 s -> 300 s: stock 45-75 -> 62-88 MiB (it copies the waveform), transducer 42-102 ->
    # 46-107 MiB: from run to run they move by up to ~60 MiB (allocator), while the audio grows by 15 MiB. Encoding
    # the 300 s whole instead of in chunks would take gigabytes (attention over 7500 frames), far above this bound.
    input_growth_mib = (300 - 60) * 16000 * 4 / 2**20
    assert peaks[300] - peaks[60] < 3 * input_growth_mib + 100, peaks
