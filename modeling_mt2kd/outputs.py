"""Output dataclasses of the MT2KD models that have no standard transformers counterpart.

Every output with a per-frame tensor at 25 Hz carries `attention_mask`, the (batch, frames) mask of its valid frames.
The clip-level outputs (`SequenceClassifierOutput` of MT2KDForAudioClassification, `XVectorOutput` of
MT2KDForXVector) hold no 25 Hz frames, so they stay the standard classes without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.modeling_outputs import CausalLMOutput
from transformers.utils import ModelOutput


@dataclass
class MT2KDEncoderOutput(ModelOutput):
    """
    Args:
        last_hidden_state: (batch, frames, hidden) encoder output at 25 Hz.
        attention_mask: (batch, frames) 1 on valid output frames.
        hidden_states: with `output_hidden_states`, the front-end output then each stack's output,
            (batch, frames_50hz, stack_dim) at 50 Hz.
        attentions: with `output_attentions`, each Zipformer layer's attention weights, in layer order
            over the stacks: (batch, heads_i, frames_i, frames_i) at that stack's frame rate,
            50 Hz / downsampling_factor[i] (frames_i = ceil(frames_50hz / downsampling_factor[i])).
    """

    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CTCOutput(CausalLMOutput):
    """transformers' CTC output (`CausalLMOutput`, as Wav2Vec2ForCTC returns) with the mask of its frames.

    Args:
        loss: mean over utterances of the CTC negative log-likelihood.
        logits: (batch, frames, vocab) at 25 Hz.
        hidden_states, attentions: as in `MT2KDEncoderOutput`.
        attention_mask: (batch, frames) 1 on valid frames of `logits`.
    """

    attention_mask: torch.Tensor | None = None


@dataclass
class TransducerOutput(ModelOutput):
    """
    Args:
        loss: mean over utterances of the transducer negative log-likelihood.
        encoder_out: (batch, frames, hidden) at 25 Hz, the joiner's encoder input.
        attention_mask: (batch, frames) 1 on valid encoder frames.
        hidden_states, attentions: as in `MT2KDEncoderOutput`.
    """

    loss: torch.Tensor | None = None
    encoder_out: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class MultiTaskOutput(ModelOutput):
    """Every head's output from one encoder pass, and the losses of the tasks that had labels.

    Args:
        loss: weighted sum of the task losses present.
        ctc_loss, transducer_loss, tagging_loss, speaker_loss: per-task means over the samples of
            that task (0 when no sample of the batch has the task).
        ctc_logits: (batch, frames, vocab) at 25 Hz.
        tagging_logits: (batch, num_labels) pre-sigmoid clip logits.
        speaker_embeddings: (batch, speaker_embedding_dim).
        speaker_logits: (batch, num_speakers) training-only classifier output.
        last_hidden_state: (batch, frames, hidden) encoder output at 25 Hz.
        attention_mask: (batch, frames) 1 on valid encoder frames.
        hidden_states, attentions: as in `MT2KDEncoderOutput`.
    """

    loss: torch.Tensor | None = None
    ctc_loss: torch.Tensor | None = None
    transducer_loss: torch.Tensor | None = None
    tagging_loss: torch.Tensor | None = None
    speaker_loss: torch.Tensor | None = None
    ctc_logits: torch.Tensor | None = None
    tagging_logits: torch.Tensor | None = None
    speaker_embeddings: torch.Tensor | None = None
    speaker_logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class DistillationOutput(ModelOutput):
    """Stage-1 student predictions and distillation losses.

    Args:
        loss: weighted sum of the distillation losses present.
        whisper_loss: mean per-utterance L1 to the stacked Whisper frames (sum over valid frames
            and channels / target width).
        tagging_loss: mean per-clip BCE to the tagging teacher's probabilities (summed over classes).
        speaker_loss: mean 1 - cosine to the speaker teacher's embeddings.
        whisper_prediction: (batch, frames, frames_per_frame · whisper_dim) at 25 Hz.
        tagging_logits: (batch, num_labels).
        speaker_embeddings: (batch, speaker_embedding_dim).
        last_hidden_state, attention_mask, hidden_states, attentions: as in `MT2KDEncoderOutput`.
    """

    loss: torch.Tensor | None = None
    whisper_loss: torch.Tensor | None = None
    tagging_loss: torch.Tensor | None = None
    speaker_loss: torch.Tensor | None = None
    whisper_prediction: torch.Tensor | None = None
    tagging_logits: torch.Tensor | None = None
    speaker_embeddings: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
