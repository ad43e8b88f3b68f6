"""Task heads over the encoder output and their losses."""

from .ctc import CTCHead, ctc_loss
from .distillation import WhisperProjection, cosine_distance_loss, frame_l1_loss, stack_teacher_frames
from .labels import check_label_ids, label_lengths
from .speaker import AttentiveStatisticsPooling, SpeakerEmbeddingHead, speaker_loss
from .tagging import TaggingHead, clip_classification_loss, tagging_loss
from .transducer import TransducerHead, TransducerJoiner, TransducerPredictor

__all__ = [
    "AttentiveStatisticsPooling",
    "CTCHead",
    "SpeakerEmbeddingHead",
    "TaggingHead",
    "TransducerHead",
    "TransducerJoiner",
    "TransducerPredictor",
    "WhisperProjection",
    "check_label_ids",
    "clip_classification_loss",
    "cosine_distance_loss",
    "ctc_loss",
    "frame_l1_loss",
    "label_lengths",
    "speaker_loss",
    "stack_teacher_frames",
    "tagging_loss",
]
