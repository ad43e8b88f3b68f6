"""MT2KD front end: Kaldi fbank feature extractor, BPE tokenizer, processor and soundfile-based audio I/O."""

from .audio_io import AudioDecodeError, load_audio, resample
from .feature_extraction_mt2kd import MT2KDFeatureExtractor
from .processing_mt2kd import MT2KDProcessor
from .registration import register_processing_auto_classes
from .tokenization_mt2kd import MT2KDTokenizer, train_bpe_tokenizer

__all__ = [
    "AudioDecodeError",
    "MT2KDFeatureExtractor",
    "MT2KDProcessor",
    "MT2KDTokenizer",
    "load_audio",
    "register_processing_auto_classes",
    "resample",
    "train_bpe_tokenizer",
]
