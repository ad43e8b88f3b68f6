"""MT2KD pipelines: transducer ASR, windowed audio tagging, speaker verification and the one-pass multi-task call.

`import processing_mt2kd` registers them as the tasks `"mt2kd-transducer-asr"`, `"mt2kd-audio-classification"`,
`"mt2kd-speaker-verification"` and `"mt2kd-multitask"` of `transformers.pipeline`; the stock
`"automatic-speech-recognition"` (CTC head) and `"audio-classification"` (tagging head, sigmoid scores) pipelines
work with MT2KD folders as they are. Memory on long recordings: the stock ASR pipeline and `mt2kd-transducer-asr`
are bounded with `chunk_length_s`; the tagging, speaker and multi-task pipelines window every recording longer than
30 s (`windowing`); the stock `"audio-classification"` pipeline is not bounded (the whole recording in one pass,
memory growing with the square of the duration): use `"mt2kd-audio-classification"` for long recordings.
"""

from .audio_classification import MT2KDAudioClassificationPipeline
from .audio_input import AudioInput, read_audio_input
from .chunking import AudioChunk, ChunkLayout, ChunkTokens, merge_chunk_tokens
from .model_source import ModelLoadError, load_mt2kd_pipeline
from .multitask import MT2KDMultiTaskPipeline
from .registration import (
    AUDIO_CLASSIFICATION_TASK,
    MULTITASK_TASK,
    SPEAKER_VERIFICATION_TASK,
    TRANSDUCER_ASR_TASK,
    register_pipelines,
)
from .speaker_threshold import CALIBRATED_THRESHOLD_KEY, CalibratedThreshold, read_calibrated_threshold
from .speaker_verification import MT2KDSpeakerVerificationPipeline
from .timestamps import transcript_with_timestamps
from .transducer_asr import MT2KDTransducerASRPipeline
from .windowing import DEFAULT_WINDOW_LENGTH_S, DEFAULT_WINDOW_OVERLAP_S, WindowSettings

__all__ = [
    "AUDIO_CLASSIFICATION_TASK",
    "CALIBRATED_THRESHOLD_KEY",
    "DEFAULT_WINDOW_LENGTH_S",
    "DEFAULT_WINDOW_OVERLAP_S",
    "MULTITASK_TASK",
    "SPEAKER_VERIFICATION_TASK",
    "TRANSDUCER_ASR_TASK",
    "AudioChunk",
    "AudioInput",
    "CalibratedThreshold",
    "ChunkLayout",
    "ChunkTokens",
    "MT2KDAudioClassificationPipeline",
    "MT2KDMultiTaskPipeline",
    "MT2KDSpeakerVerificationPipeline",
    "MT2KDTransducerASRPipeline",
    "ModelLoadError",
    "WindowSettings",
    "load_mt2kd_pipeline",
    "merge_chunk_tokens",
    "read_audio_input",
    "read_calibrated_threshold",
    "register_pipelines",
    "transcript_with_timestamps",
]
