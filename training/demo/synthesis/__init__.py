"""Reproducible synthetic demo corpus: eSpeak NG speakers, generated sound events, mixtures."""

from training_mt2kd.demo.synthesis.corpus import DEMO_LABELS, DemoCorpus, load_demo_corpus, synthesize_demo_corpus
from training_mt2kd.demo.synthesis.espeak import EspeakUnavailableError, espeak_version, synthesize
from training_mt2kd.demo.synthesis.sentences import sample_sentence
from training_mt2kd.demo.synthesis.sound_events import SOUND_EVENT_CLASSES, generate_sound_event
from training_mt2kd.demo.synthesis.speakers import SyntheticSpeaker, sample_speakers

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
