"""MT2KD pipelines: transducer ASR, speaker verification and the one-pass multi-task call.

`import processing_mt2kd` registers them as the tasks `"mt2kd-transducer-asr"`, `"mt2kd-speaker-verification"` and
`"mt2kd-multitask"` of `transformers.pipeline`; the stock `"automatic-speech-recognition"` (CTC head) and
`"audio-classification"` (tagging head, sigmoid scores) pipelines work with MT2KD folders as they are.
"""

from .audio_input import AudioInput, read_audio_input
from .chunking import AudioChunk, ChunkLayout, ChunkTokens, merge_chunk_tokens
from .multitask import MT2KDMultiTaskPipeline
from .registration import MULTITASK_TASK, SPEAKER_VERIFICATION_TASK, TRANSDUCER_ASR_TASK, register_pipelines
from .speaker_verification import DEFAULT_THRESHOLD, MT2KDSpeakerVerificationPipeline
from .timestamps import transcript_with_timestamps
from .transducer_asr import MT2KDTransducerASRPipeline

__all__ = [
    "DEFAULT_THRESHOLD",
    "MULTITASK_TASK",
    "SPEAKER_VERIFICATION_TASK",
    "TRANSDUCER_ASR_TASK",
    "AudioChunk",
    "AudioInput",
    "ChunkLayout",
    "ChunkTokens",
    "MT2KDMultiTaskPipeline",
    "MT2KDSpeakerVerificationPipeline",
    "MT2KDTransducerASRPipeline",
    "merge_chunk_tokens",
    "read_audio_input",
    "register_pipelines",
    "transcript_with_timestamps",
]
