"""Training data: corpus loading, duration-bucketed batching, mixing, collation and augmentation.

Flow: `CorpusSpec` → `load_corpus` (role-named columns, undecoded audio, duration filter) →
`CorpusMixture` + `MixedCorpusSampler` (or `DurationBucketSampler` / `BufferedBucketBatcher` for
one corpus) → `AudioCollator` (decode, pad, task masks, targets; bad files become `DataHealth`
events) → `NoiseMixer` and `SpecAugment` on the student's copy of the input.
"""

from .collate import IGNORE_INDEX, AudioCollator
from .corpus import TASKS, CorpusSpec, ManifestPathError, load_corpus
from .decode import SkippedExample, decode_waveform
from .health import DataHealth, SkipReason
from .labels import LabelSet, SpeakerIndex
from .mixing import CorpusMixture, MixedCorpusSampler
from .noise import NoiseMixer
from .sampler import DurationBucketSampler
from .spec_augment import SpecAugment
from .streaming import BufferedBucketBatcher

__all__ = [
    "IGNORE_INDEX",
    "TASKS",
    "AudioCollator",
    "BufferedBucketBatcher",
    "CorpusMixture",
    "CorpusSpec",
    "DataHealth",
    "DurationBucketSampler",
    "LabelSet",
    "ManifestPathError",
    "MixedCorpusSampler",
    "NoiseMixer",
    "SkipReason",
    "SkippedExample",
    "SpecAugment",
    "SpeakerIndex",
    "decode_waveform",
    "load_corpus",
]
