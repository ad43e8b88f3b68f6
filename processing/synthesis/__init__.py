"""Reproducible synthetic demo corpus: eSpeak NG speakers, generated sound events, mixtures."""

from .corpus import DEMO_LABELS, DemoCorpus, load_demo_corpus, synthesize_demo_corpus
from .espeak import EspeakUnavailableError, espeak_version, synthesize
from .sentences import sample_sentence
from .sound_events import SOUND_EVENT_CLASSES, generate_sound_event
from .speakers import SyntheticSpeaker, sample_speakers

__all__ = [
    "DEMO_LABELS",
    "SOUND_EVENT_CLASSES",
    "DemoCorpus",
    "EspeakUnavailableError",
    "SyntheticSpeaker",
    "espeak_version",
    "generate_sound_event",
    "load_demo_corpus",
    "sample_sentence",
    "sample_speakers",
    "synthesize",
    "synthesize_demo_corpus",
]
