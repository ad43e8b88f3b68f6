"""Text to speech through libespeak-ng, loaded with ctypes from the `espeakng-loader` wheel.

Only the calls the demo corpus needs are bound: initialise in synchronous mode, pick a voice, set
rate/pitch/range, synthesise into a callback.

Reproducibility: libespeak-ng keeps synthesis state in C statics that survive `espeak_Terminate`
(pitch-flutter phase, gain control, a noise generator), so the same call gives different samples
depending on what was spoken before. Each `synthesize` call therefore loads a fresh instance of a
private copy of the library (`dlopen` of a file nobody else has opened), seeds its noise generator,
speaks, and unloads it again — about 5 ms of overhead per call, in exchange for output that depends
only on the arguments.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import ctypes.util
import math
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

# Constants from eSpeak NG's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error code instead of calling exit()
_POSITION_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_PARAMETER_PITCH = 3
_PARAMETER_RANGE = 4
_ERROR_NOT_FOUND = 2
_NOISE_SEED = 0

_unload_library = _ctypes.FreeLibrary if sys.platform == "win32" else _ctypes.dlclose
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

INSTALL_HINT = "install the speech-synthesis extra: pip install 'mt2kd[demo]'"


class EspeakUnavailableError(RuntimeError):
    """libespeak-ng could not be loaded or initialised."""


@dataclass(frozen=True)
class _LibraryLocation:
    library_path: str
    data_path: str | None  # None: the library's compiled-in default
    origin: str


def _library_locations() -> list[_LibraryLocation]:
    """Where to look for libespeak-ng: the `espeakng-loader` wheel first, then the system."""
    locations = []
    try:
        import espeakng_loader

        locations.append(
            _LibraryLocation(
                espeakng_loader.get_library_path(), espeakng_loader.get_data_path(), "espeakng-loader wheel"
            )
        )
    except (ImportError, RuntimeError):
        pass
    system_library = ctypes.util.find_library("espeak-ng")
    if system_library is not None:
        locations.append(_LibraryLocation(system_library, None, "system library"))
    return locations


def _private_copy(library_path: str) -> str:
    """A copy of the library file under a temporary folder, so that `dlopen` maps an instance of our own.

    The dynamic loader shares one instance per file; a copy keeps other users of libespeak-ng in
    the process (and their state) apart from ours. Names without a folder (found by soname) are
    returned as they are.
    """
    if not os.path.isfile(library_path):
        return library_path
    folder = tempfile.mkdtemp(prefix="mt2kd-espeak-")
    atexit.register(shutil.rmtree, folder, True)
    copy_path = os.path.join(folder, os.path.basename(library_path))
    shutil.copyfile(library_path, copy_path)
    return copy_path


class _EspeakInstance:
    """One freshly loaded and initialised libespeak-ng; `close()` unloads it."""

    def __init__(self, library_path: str, data_path: str | None) -> None:
        self.library = ctypes.CDLL(library_path)
        try:
            self._declare_signatures()
        except AttributeError as error:
            self.close(initialised=False)
            raise OSError(f"libespeak-ng 1.52 or newer is needed ({error})") from None
        encoded_data_path = data_path.encode() if data_path is not None else None
        self.sample_rate = self.library.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, encoded_data_path, _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            self.close(initialised=False)
            raise OSError(f"espeak_Initialize failed with code {self.sample_rate} (data path {data_path})")
        self.version = self.library.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        # Held on the instance: ctypes must not garbage-collect a callback the library still calls.
        self._callback = _SynthCallback(self._collect)
        self.library.espeak_SetSynthCallback(self._callback)
        self.library.espeak_ng_SetRandSeed(_NOISE_SEED)

    def _declare_signatures(self) -> None:
        library = self.library
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_Initialize.restype = ctypes.c_int
        library.espeak_Info.argtypes = [ctypes.c_void_p]
        library.espeak_Info.restype = ctypes.c_char_p
        library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        library.espeak_SetSynthCallback.restype = None
        library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        library.espeak_ng_SetRandSeed.restype = None
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetVoiceByName.restype = ctypes.c_int
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_SetParameter.restype = ctypes.c_int
        library.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        library.espeak_Synth.restype = ctypes.c_int
        library.espeak_Terminate.argtypes = []
        library.espeak_Terminate.restype = ctypes.c_int

    def _collect(self, samples: ctypes.POINTER(ctypes.c_short), num_samples: int, events: int | None) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(num_samples,)).copy())
        return 0  # 0 = continue synthesis

    def speak(self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> np.ndarray:
        """int16 samples `(samples,)` at `self.sample_rate` Hz."""
        code = self.library.espeak_SetVoiceByName(voice.encode())
        if code == _ERROR_NOT_FOUND:
            raise ValueError(
                f"unknown eSpeak NG voice {voice!r}; use a voice such as 'en-us', 'en+f3' or 'en-gb-x-rp+m3'"
            )
        if code != 0:
            raise RuntimeError(f"espeak_SetVoiceByName({voice!r}) failed with code {code}")
        for parameter, value in (
            (_PARAMETER_RATE, rate_wpm),
            (_PARAMETER_PITCH, pitch),
            (_PARAMETER_RANGE, pitch_range),
        ):
            self.library.espeak_SetParameter(parameter, value, 0)
        encoded = text.encode("utf-8")
        self._chunks = []
        code = self.library.espeak_Synth(encoded, len(encoded) + 1, 0, _POSITION_CHARACTER, 0, _CHARS_UTF8, None, None)
        if code != 0:
            raise RuntimeError(f"espeak_Synth failed with code {code} for text {text[:40]!r}")
        chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def close(self, initialised: bool = True) -> None:
        if initialised:
            self.library.espeak_Terminate()
        _unload_library(self.library._handle)


_LOCK = threading.Lock()
_LOCATION: _LibraryLocation | None = None  # the first location that loaded, with its private copy


def _open_instance() -> _EspeakInstance:
    """A fresh libespeak-ng instance; call with `_LOCK` held and `close()` it when done."""
    global _LOCATION
    if _LOCATION is not None:
        return _EspeakInstance(_LOCATION.library_path, _LOCATION.data_path)
    failures = []
    for location in _library_locations():
        try:
            private = _LibraryLocation(_private_copy(location.library_path), location.data_path, location.origin)
            instance = _EspeakInstance(private.library_path, private.data_path)
        except OSError as error:
            failures.append(f"{location.origin} {location.library_path}: {error}")
            continue
        _LOCATION = private
        return instance
    tried = "; ".join(failures) if failures else "no espeakng-loader wheel and no system libespeak-ng found"
    raise EspeakUnavailableError(f"cannot load libespeak-ng ({tried}); {INSTALL_HINT}")


def espeak_version() -> str:
    """Version string of the libespeak-ng in use, e.g. '1.52.0'."""
    with _LOCK:
        instance = _open_instance()
        instance.close()
    return instance.version


def synthesize(
    text: str,
    voice: str = "en-us",
    rate_wpm: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Speak `text` with an eSpeak NG voice; returns float32 mono audio `(samples,)` in [-1, 1] at `sample_rate` Hz.

    `voice` is a language voice with an optional variant (`en-us`, `en+f3`, `en-gb-x-rp+m3`);
    `rate_wpm` is words per minute (80..450); `pitch` and `pitch_range` are eSpeak's 0..99 scales
    (50 = the voice's default). Thread-safe; the same arguments give the same samples.
    """
    if not text.strip():
        raise ValueError("expected non-empty text to synthesize; got an empty or blank string")
    if not 80 <= rate_wpm <= 450:
        raise ValueError(f"rate_wpm must be within 80..450 words per minute; got {rate_wpm}")
    for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
        if not 0 <= value <= 99:
            raise ValueError(f"{name} must be within eSpeak's 0..99 scale; got {value}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz; got {sample_rate}")
    with _LOCK:
        instance = _open_instance()
        try:
            samples = instance.speak(text, voice, int(rate_wpm), int(pitch), int(pitch_range))
        finally:
            instance.close()
    audio = torch.from_numpy(samples.astype(np.float32) / 32768.0)
    if sample_rate != instance.sample_rate:
        # The convolution inside keeps a plan (hundreds of KB) per input length it has seen; padding
        # with silence to whole seconds bounds that cache and leaves the kept samples unchanged.
        padded = torch.nn.functional.pad(audio, (0, -len(audio) % instance.sample_rate))
        resampled = torchaudio.functional.resample(padded, instance.sample_rate, sample_rate)
        # Sinc resampling can overshoot full scale by a few percent.
        audio = resampled[: math.ceil(len(audio) * sample_rate / instance.sample_rate)].clamp_(-1.0, 1.0)
    return audio.numpy()
