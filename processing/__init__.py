"""MT2KD front end: Kaldi fbank feature extractor, BPE tokenizer, processor, soundfile-based audio I/O and the
pipelines.

Importing this package registers the whole model family with transformers: the model Auto classes (through
`modeling_mt2kd`), AutoFeatureExtractor / AutoTokenizer / AutoProcessor and the `mt2kd-*` pipeline tasks.
"""

from .audio_io import AudioDecodeError, load_audio, resample
from .feature_extraction_mt2kd import MT2KDFeatureExtractor
from .processing_mt2kd import MT2KDProcessor
from .registration import AUTO_FRONT_END_CLASSES, register_processing_auto_classes
from .tokenization_mt2kd import MT2KDTokenizer, train_bpe_tokenizer

__all__ = [
    "AUTO_FRONT_END_CLASSES",
    "AudioDecodeError",
    "MT2KDFeatureExtractor",
    "MT2KDProcessor",
    "MT2KDTokenizer",
    "load_audio",
    "register_processing_auto_classes",
    "resample",
    "train_bpe_tokenizer",
]

register_processing_auto_classes()
