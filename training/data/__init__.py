"""Training data: corpus loading, duration-bucketed batching, mixing, collation and augmentation.

Flow: `CorpusSpec` → `load_corpus` (role-named columns, undecoded audio, duration filter) →
`CorpusMixture` + `MixedCorpusSampler` (or `DurationBucketSampler` / `BufferedBucketBatcher` for
one corpus) → `AudioCollator` (decode, pad, task masks, targets; bad files become `DataHealth`
events) → `NoiseMixer` and `SpecAugment` on the student's copy of the input.
"""

from configuration_mt2kd import IGNORE_INDEX
from training_mt2kd.data.collate import AudioCollator
from training_mt2kd.data.corpus import CorpusSpec, ManifestPathError, corpus_spec_from_dict, load_corpus
from training_mt2kd.data.decode import SkippedExample, decode_waveform
from training_mt2kd.data.health import DataHealth, SkipReason
from training_mt2kd.data.labels import LabelSet, SpeakerIndex
from training_mt2kd.data.mixing import CorpusMixture, MixedCorpusSampler
from training_mt2kd.data.noise import NoiseMixer
from training_mt2kd.data.sampler import DurationBucketSampler
from training_mt2kd.data.spec_augment import SpecAugment
from training_mt2kd.data.streaming import BufferedBucketBatcher

__all__ = [
    "IGNORE_INDEX",
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
    "corpus_spec_from_dict",
    "decode_waveform",
    "load_corpus",
]
