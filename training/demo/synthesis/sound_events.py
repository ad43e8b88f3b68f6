"""Generated sound events, one parametrised generator per AudioSet class (named by its display name).

Each generator draws its own frequencies, rhythms and envelopes from a numpy `Generator`, so every
clip of a class differs while keeping the class's character: a siren sweeps, a bell rings with
inharmonic partials, rain patters, an idling engine throbs at its firing rate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EventGenerator = Callable[[np.random.Generator, int, int], np.ndarray]

_FADE_S = 0.01  # fade in and out so that no clip starts or ends with a click


def _times(num_samples: int, sample_rate: int) -> np.ndarray:
    return np.arange(num_samples) / sample_rate


def _tone(frequency_hz: np.ndarray | float, num_samples: int, sample_rate: int, phase: float = 0.0) -> np.ndarray:
    """Sine whose frequency may change per sample: the phase is the running sum of the frequency."""
    frequency = np.broadcast_to(np.asarray(frequency_hz, dtype=np.float64), (num_samples,))
    return np.sin(phase + 2 * np.pi * np.cumsum(frequency) / sample_rate)


def _shaped_noise(
    rng: np.random.Generator, num_samples: int, sample_rate: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Unit-RMS noise whose spectrum is white noise's times `gain(frequencies_hz)`."""
    fft_length = 1 << max(0, num_samples - 1).bit_length()  # FFTs of lengths with large prime factors are slow
    spectrum = np.fft.rfft(rng.standard_normal(fft_length)) * gain(np.fft.rfftfreq(fft_length, 1 / sample_rate))
    noise = np.fft.irfft(spectrum, fft_length)[:num_samples]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _band_noise(
    rng: np.random.Generator, num_samples: int, sample_rate: int, low_hz: float, high_hz: float
) -> np.ndarray:
    """Unit-RMS white noise with everything outside [low_hz, high_hz] removed."""
    return _shaped_noise(
        rng, num_samples, sample_rate, lambda frequencies: (frequencies >= low_hz) & (frequencies <= high_hz)
    )


def background_noise(rng: np.random.Generator, num_samples: int, sample_rate: int = 16000) -> np.ndarray:
    """Unit-RMS coloured noise `(num_samples,)` float64: power falls as 1/f^slope, slope drawn from 0 (white) to 2 (brown)."""
    slope = rng.uniform(0.0, 2.0)
    return _shaped_noise(
        rng, num_samples, sample_rate, lambda frequencies: np.maximum(frequencies, 20.0) ** (-slope / 2)
    )


def _place(clip: np.ndarray, sound: np.ndarray, start: int) -> None:
    """Add `sound` into `clip` from sample `start`, cutting what runs past the end."""
    if start >= len(clip):
        return
    end = min(len(clip), start + len(sound))
    clip[start:end] += sound[: end - start]


def _damped_partials(
    frequencies_hz: np.ndarray, amplitudes: np.ndarray, decays_s: np.ndarray, num_samples: int, sample_rate: int
) -> np.ndarray:
    """Sum of exponentially decaying sines starting together: a struck object."""
    t = _times(num_samples, sample_rate)[:, None]
    # Phases wrapped in float64, then sines and envelopes in float32: same sound, a quarter faster.
    phases = (2 * np.pi * (t * frequencies_hz % 1.0)).astype(np.float32)
    envelopes = np.exp((-t / decays_s).astype(np.float32))
    return (np.sin(phases) * envelopes) @ np.asarray(amplitudes, dtype=np.float32)


def _siren(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Electronic siren: a wail (slow sweep), a yelp (fast sweep) or a two-tone hi-lo."""
    t = _times(num_samples, sample_rate)
    low_hz, high_hz = rng.uniform(450, 800), rng.uniform(1000, 1700)
    pattern = rng.choice(["wail", "yelp", "hi-lo"])
    if pattern == "hi-lo":
        period_s = rng.uniform(0.8, 1.4)
        frequency = np.where((t / period_s) % 1 < 0.5, high_hz, low_hz)
    else:
        period_s = rng.uniform(2.0, 4.0) if pattern == "wail" else rng.uniform(0.15, 0.35)
        frequency = low_hz + (high_hz - low_hz) * 0.5 * (
            1 - np.cos(2 * np.pi * t / period_s + rng.uniform(0, 2 * np.pi))
        )
    # A few odd harmonics give the horn-speaker buzz of real sirens.
    return sum(_tone(harmonic * frequency, num_samples, sample_rate) / harmonic**1.5 for harmonic in (1, 2, 3, 5))


def _bell(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """One to four strikes of a bell: inharmonic partials (hum, prime, tierce, quint, nominal...) ringing out."""
    fundamental_hz = rng.uniform(250, 900)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.16])
    ratios = ratios * rng.uniform(0.99, 1.01, size=len(ratios))
    frequencies = fundamental_hz * ratios
    keep = frequencies < 0.45 * sample_rate
    amplitudes = rng.uniform(0.3, 1.0, size=len(ratios)) / np.sqrt(ratios)
    decays_s = rng.uniform(0.8, 2.5) / ratios**0.7
    ring = _damped_partials(frequencies[keep], amplitudes[keep], decays_s[keep], num_samples, sample_rate)
    clip = np.zeros(num_samples)
    interval = int(rng.uniform(0.4, 1.2) * sample_rate)
    for strike in range(int(rng.integers(1, 5))):
        _place(clip, ring * rng.uniform(0.7, 1.0), strike * interval)
    return clip


def _beep(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Electronic beeps: a steady tone (sine or band-limited square) switched on and off in a regular pattern."""
    frequency_hz = rng.uniform(700, 3000)
    odd_harmonics = np.arange(1, 16, 2) if rng.random() < 0.4 else np.array([1])  # square-wave beeper or pure tone
    odd_harmonics = odd_harmonics[odd_harmonics * frequency_hz < 0.45 * sample_rate]
    tone = sum(_tone(harmonic * frequency_hz, num_samples, sample_rate) / harmonic for harmonic in odd_harmonics)
    beep_s, gap_s = rng.uniform(0.08, 0.4), rng.uniform(0.08, 0.6)
    position_s = _times(num_samples, sample_rate) % (beep_s + gap_s)
    gate = (position_s < beep_s).astype(np.float64)
    ramp = np.hanning(int(0.01 * sample_rate))  # soften the switching clicks
    gate = np.convolve(gate, ramp / ramp.sum(), mode="same")
    return tone * gate


def _idling(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Idling engine: a low rumble pulsing at the firing rate, each firing a damped low resonance."""
    firing_hz = rng.uniform(15, 40)
    pulses = np.zeros(num_samples)
    onsets = np.arange(0, num_samples / sample_rate, 1 / firing_hz)
    onsets = onsets + rng.normal(0, 0.04 / firing_hz, size=len(onsets))
    for onset_s in onsets:
        index = int(onset_s * sample_rate)
        if 0 <= index < num_samples:
            pulses[index] += rng.uniform(0.6, 1.0)
    resonance_hz, body_s = rng.uniform(60, 180), rng.uniform(0.01, 0.03)
    kernel_t = _times(int(5 * body_s * sample_rate), sample_rate)
    kernel = np.exp(-kernel_t / body_s) * np.sin(2 * np.pi * resonance_hz * kernel_t)
    throb = np.convolve(pulses, kernel)[:num_samples]
    throb /= np.max(np.abs(throb)) + 1e-12
    t = _times(num_samples, sample_rate)
    rumble = _band_noise(rng, num_samples, sample_rate, 30, 400) * (1 + 0.8 * np.cos(2 * np.pi * firing_hz * t))
    return throb + 0.25 * rumble + 0.02 * _band_noise(rng, num_samples, sample_rate, 300, 2000)


def _rain(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Rain: a hiss of distant drops plus many close drops, each a tiny decaying chirp at a random time."""
    hiss = _band_noise(rng, num_samples, sample_rate, 400, 0.45 * sample_rate)
    t = _times(num_samples, sample_rate)
    hiss *= 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))
    clip = rng.uniform(0.1, 0.3) * hiss
    drop_length = int(0.02 * sample_rate)
    drop_t = _times(drop_length, sample_rate)
    num_drops = rng.poisson(rng.uniform(30, 150) * num_samples / sample_rate)
    for _ in range(num_drops):
        frequency_hz = rng.uniform(1500, 5000)
        # Drops ring upward in pitch as the bubble they trap shrinks.
        chirp = np.sin(2 * np.pi * frequency_hz * (drop_t + 20 * drop_t**2))
        drop = chirp * np.exp(-drop_t / rng.uniform(0.002, 0.006)) * rng.uniform(0.2, 1.0)
        _place(clip, drop, int(rng.integers(0, num_samples)))
    return clip


def _clapping(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """One to three people clapping: sharp band-limited noise bursts at a steady rate with jitter."""
    clip = np.zeros(num_samples)
    clap_length = int(0.08 * sample_rate)
    clap_t = _times(clap_length, sample_rate)
    for _ in range(int(rng.integers(1, 4))):
        rate_hz = rng.uniform(2.0, 5.0)
        low_hz = rng.uniform(600, 1200)
        onset_s = rng.uniform(0, 1 / rate_hz)
        while onset_s < num_samples / sample_rate:
            burst = _band_noise(rng, clap_length, sample_rate, low_hz, low_hz * rng.uniform(2.5, 4.0))
            envelope = np.exp(-clap_t / rng.uniform(0.008, 0.025)) * np.minimum(1, clap_t / 0.001)
            _place(clip, burst * envelope * rng.uniform(0.6, 1.0), int(onset_s * sample_rate))
            onset_s += (1 / rate_hz) * rng.uniform(0.9, 1.1)
    return clip


def _whistle(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Referee (pea) whistle: loud high blasts whose pitch and loudness trill as the pea rattles."""
    t = _times(num_samples, sample_rate)
    carrier_hz, trill_hz = rng.uniform(2000, 3500), rng.uniform(20, 40)
    trill = np.sin(2 * np.pi * trill_hz * t)
    tone = _tone(carrier_hz * (1 + rng.uniform(0.01, 0.04) * trill), num_samples, sample_rate)
    tone *= 1 - rng.uniform(0.2, 0.6) * (0.5 + 0.5 * trill)
    breath = _band_noise(rng, num_samples, sample_rate, carrier_hz * 0.8, carrier_hz * 1.2)
    gate = np.zeros(num_samples)
    start_s = rng.uniform(0, 0.2)
    while start_s < t[-1]:
        length_s = rng.uniform(0.2, 1.2)
        blast = (t >= start_s) & (t < start_s + length_s)
        gate[blast] = 1.0
        start_s += length_s + rng.uniform(0.15, 0.6)
    ramp = np.hanning(int(0.02 * sample_rate))
    gate = np.convolve(gate, ramp / ramp.sum(), mode="same")
    return (tone + 0.05 * breath) * gate


def _piano(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Piano phrase: notes and small chords from one scale, each with slightly stretched (stiff-string) partials."""
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10])
    tonic = int(rng.integers(48, 64))  # MIDI note number
    stiffness = rng.uniform(1e-4, 4e-4)
    harmonics = np.arange(1, 7)
    keys: dict[int, np.ndarray] = {}  # scale degree -> the sound of that key, struck once per clip's piano

    def key(degree: int) -> np.ndarray:
        if degree not in keys:
            midi = tonic + 12 * (degree // 7) + scale[degree % 7]
            fundamental_hz = 440.0 * 2 ** ((midi - 69) / 12)
            frequencies = fundamental_hz * harmonics * np.sqrt(1 + stiffness * harmonics**2)
            keep = frequencies < 0.45 * sample_rate
            amplitudes = rng.uniform(0.5, 1.0, size=len(harmonics)) / harmonics**1.5
            decays_s = rng.uniform(0.25, 0.6) / harmonics**0.5
            # Cut the note once its fundamental has decayed by about 35 dB.
            note_length = min(num_samples, int(4 * decays_s[0] * sample_rate))
            note = _damped_partials(frequencies[keep], amplitudes[keep], decays_s[keep], note_length, sample_rate)
            attack = int(0.003 * sample_rate)
            note[:attack] *= np.linspace(0, 1, attack)  # hammer attack
            keys[degree] = note
        return keys[degree]

    clip = np.zeros(num_samples)
    onset_s = rng.uniform(0, 0.1)
    while onset_s < num_samples / sample_rate:
        for degree in rng.integers(0, 14, size=int(rng.choice([1, 1, 2, 3]))):
            _place(clip, key(int(degree)) * rng.uniform(0.5, 1.0), int(onset_s * sample_rate))
        onset_s += rng.choice([0.2, 0.3, 0.4, 0.6])
    return clip


def _knock(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Knocking on a door: groups of two to five knocks, each a click exciting low wooden resonances."""
    knock_length = int(0.12 * sample_rate)
    resonances_hz = rng.uniform(120, 600, size=3)
    clip = np.zeros(num_samples)
    group_start_s = rng.uniform(0, 0.3)
    while group_start_s < num_samples / sample_rate:
        interval_s = rng.uniform(0.12, 0.3)
        for knock in range(int(rng.integers(2, 6))):
            body = _damped_partials(
                resonances_hz * rng.uniform(0.97, 1.03, size=3),
                rng.uniform(0.4, 1.0, size=3),
                rng.uniform(0.01, 0.04, size=3),
                knock_length,
                sample_rate,
            )
            click = _band_noise(rng, knock_length, sample_rate, 1000, 5000) * np.exp(
                -_times(knock_length, sample_rate) / 0.002
            )
            start = int((group_start_s + knock * interval_s * rng.uniform(0.95, 1.05)) * sample_rate)
            _place(clip, (body + 0.3 * click) * rng.uniform(0.7, 1.0), start)
        group_start_s += rng.uniform(1.0, 2.5)
    return clip


def _tick_tock(rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """Mechanical clock: short metallic clicks at a steady beat, alternating between two pitches."""
    beat_s = rng.uniform(0.4, 1.0)
    tick_length = int(0.04 * sample_rate)
    sounds = []
    for _ in range(2):  # "tick" and "tock"
        pitch_hz = rng.uniform(1500, 5000)
        sounds.append(
            _damped_partials(
                pitch_hz * np.array([1.0, 1.6, 2.3]),
                np.array([1.0, 0.6, 0.3]),
                np.full(3, rng.uniform(0.003, 0.01)),
                tick_length,
                sample_rate,
            )
        )
    clip = np.zeros(num_samples)
    onset_s, beat = rng.uniform(0, min(beat_s, 0.5 * num_samples / sample_rate)), 0
    while onset_s < num_samples / sample_rate:
        _place(clip, sounds[beat % 2], int(onset_s * sample_rate))
        onset_s, beat = onset_s + beat_s, beat + 1
    return clip


# AudioSet display name -> generator, in AudioSet index order.
SOUND_EVENT_GENERATORS: dict[str, EventGenerator] = {
    "Clapping": _clapping,
    "Piano": _piano,
    "Bell": _bell,
    "Rain": _rain,
    "Idling": _idling,
    "Knock": _knock,
    "Siren": _siren,
    "Whistle": _whistle,
    "Tick-tock": _tick_tock,
    "Beep, bleep": _beep,
}
SOUND_EVENT_CLASSES = tuple(SOUND_EVENT_GENERATORS)


def generate_sound_event(
    label: str, duration_s: float, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """One clip of the AudioSet class `label`: float32 mono `(round(duration_s * sample_rate),)`, peak 1.0.

    The clip is faded in and out over 10 ms; everything random is drawn from `rng`.
    """
    if label not in SOUND_EVENT_GENERATORS:
        raise ValueError(f"no generator for sound event {label!r}; choose one of {list(SOUND_EVENT_CLASSES)}")
    num_samples = round(duration_s * sample_rate)
    if num_samples < 2 * _FADE_S * sample_rate:
        raise ValueError(f"duration_s must be at least {2 * _FADE_S} s; got {duration_s}")
    clip = SOUND_EVENT_GENERATORS[label](rng, num_samples, sample_rate)
    fade = np.linspace(0.0, 1.0, int(_FADE_S * sample_rate))
    clip[: len(fade)] *= fade
    clip[len(clip) - len(fade) :] *= fade[::-1]
    return (clip / (np.max(np.abs(clip)) + 1e-12)).astype(np.float32)
