"""Synthetic speaker identities: an eSpeak NG accent × voice variant, each with its own pitch and rate."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# English voices shipped with eSpeak NG 1.52 (file names, as `espeak_SetVoiceByName` accepts them).
ENGLISH_ACCENTS = (
    "en-us",
    "en",  # British English
    "en-gb-x-rp",
    "en-029",  # Caribbean
    "en-gb-scotland",
    "en-us-nyc",
    "en-gb-x-gbclan",  # Lancashire
    "en-gb-x-gbcwmd",  # West Midlands
)
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4")

# Per-speaker ranges. Pitch and range are eSpeak's 0..99 scales around the variant's own voice.
PITCH_RANGE = (25, 75)
PITCH_SPAN_RANGE = (30, 80)
RATE_WPM_RANGE = (140, 200)


@dataclass(frozen=True)
class SyntheticSpeaker:
    """One synthetic speaker: the arguments `synthesize` needs besides the text."""

    speaker_id: str
    voice: str  # accent + variant, e.g. "en-gb-x-rp+m3"
    rate_wpm: int
    pitch: int  # eSpeak 0..99
    pitch_range: int  # eSpeak 0..99


def sample_speakers(num_speakers: int, seed: int = 0) -> list[SyntheticSpeaker]:
    """`num_speakers` distinct speakers, deterministic from `seed`.

    Speakers are drawn in a fixed order, so the first `k` of a larger draw equal a draw of `k`:
    every (accent, variant) pair is used once before any is reused, and a reused pair gets a
    different pitch and rate. Ids are `spk000`, `spk001`, ...
    """
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be at least 1; got {num_speakers}")
    rng = np.random.default_rng(seed)
    voices = [
        f"{accent}+{variant}" for accent, variant in itertools.product(ENGLISH_ACCENTS, MALE_VARIANTS + FEMALE_VARIANTS)
    ]
    max_speakers = len(voices) * (PITCH_RANGE[1] - PITCH_RANGE[0] + 1)
    if num_speakers > max_speakers:
        raise ValueError(
            f"num_speakers must be at most {max_speakers} (distinct voice and pitch pairs); got {num_speakers}"
        )
    speakers: list[SyntheticSpeaker] = []
    used: set[tuple[str, int]] = set()
    while len(speakers) < num_speakers:
        for voice_index in rng.permutation(len(voices)):
            if len(speakers) == num_speakers:
                break
            voice = voices[voice_index]
            pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
            while (voice, pitch) in used:
                pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
            used.add((voice, pitch))
            speakers.append(
                SyntheticSpeaker(
                    speaker_id=f"spk{len(speakers):03d}",
                    voice=voice,
                    rate_wpm=int(rng.integers(RATE_WPM_RANGE[0], RATE_WPM_RANGE[1] + 1)),
                    pitch=pitch,
                    pitch_range=int(rng.integers(PITCH_SPAN_RANGE[0], PITCH_SPAN_RANGE[1] + 1)),
                )
            )
    return speakers
