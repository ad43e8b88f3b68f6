"""The PyTorch modules traced into ONNX: one multi-head encoder graph, and the transducer's decoder and joiner steps.

The encoder graph takes icefall's `(x, x_lens)` inputs, so that the sherpa-onnx files are cut from it by pruning
(`graph_editing.py`) instead of exporting the encoder once per file; `model.onnx` gets its batch-first
`attention_mask` input in front of the same graph.
"""

from __future__ import annotations

import torch
from torch import nn

from modeling_mt2kd.masks import lengths_to_mask

__all__ = ["EncoderOutputs", "MultiHeadEncoderGraph", "TransducerDecoderGraph", "TransducerJoinerGraph"]


class EncoderOutputs:
    """Output names of `MultiHeadEncoderGraph`, in the graph's output order (heads only when the model has them)."""

    HIDDEN = "last_hidden_state"
    LENGTHS = "output_lengths"
    MASK = "output_attention_mask"
    TRANSDUCER = "transducer_encoder_out"
    CTC = "ctc_log_probs"
    TAGGING = "tagging_probs"
    SPEAKER = "speaker_embeddings"


class MultiHeadEncoderGraph(nn.Module):
    """fbank `x` (batch, frames, 80) at 100 Hz and `x_lens` (batch,) int64 → the encoder output at 25 Hz and every
    head's inference output.

    Outputs, in order: `last_hidden_state` (batch, frames', hidden), `output_lengths` (batch,) int64,
    `output_attention_mask` (batch, frames') int64, then for each head the model has:
    `transducer_encoder_out` (batch, frames', joiner_dim) = the joiner's encoder projection (icefall's offline
    encoder output), `ctc_log_probs` (batch, frames', vocab), `tagging_probs` (batch, num_labels) sigmoid
    probabilities (softmax for a single-label `problem_type`), `speaker_embeddings` (batch, speaker_embedding_dim).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.mt2kd = getattr(model, "mt2kd", model)  # a bare MT2KDModel is its own encoder
        transducer = getattr(model, "transducer", None)
        self.transducer_encoder_proj = transducer.joiner.encoder_proj if transducer is not None else None
        self.ctc_head = getattr(model, "ctc_head", None)
        self.tagging_head = getattr(model, "tagging_head", None)
        self.speaker_head = getattr(model, "speaker_head", None)
        # Tagging probabilities as the model's loss defines them: sigmoid (multi-label, the default) or softmax.
        self.single_label_tagging = getattr(model.config, "problem_type", None) == "single_label_classification"

    @property
    def output_names(self) -> list[str]:
        names = [EncoderOutputs.HIDDEN, EncoderOutputs.LENGTHS, EncoderOutputs.MASK]
        heads = (
            (self.transducer_encoder_proj, EncoderOutputs.TRANSDUCER),
            (self.ctc_head, EncoderOutputs.CTC),
            (self.tagging_head, EncoderOutputs.TAGGING),
            (self.speaker_head, EncoderOutputs.SPEAKER),
        )
        return names + [name for head, name in heads if head is not None]

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        attention_mask = lengths_to_mask(x_lens, x.shape[1]).long()
        encoded = self.mt2kd(x, attention_mask=attention_mask)
        hidden, output_mask = encoded.last_hidden_state, encoded.attention_mask
        frame_mask = output_mask.bool()
        outputs = [hidden, output_mask.sum(dim=1), output_mask]
        if self.transducer_encoder_proj is not None:
            outputs.append(self.transducer_encoder_proj(hidden))
        if self.ctc_head is not None:
            outputs.append(self.ctc_head(hidden, frame_mask).log_softmax(dim=-1))
        if self.tagging_head is not None:
            logits = self.tagging_head(hidden, frame_mask)
            outputs.append(logits.softmax(dim=-1) if self.single_label_tagging else logits.sigmoid())
        if self.speaker_head is not None:
            outputs.append(self.speaker_head(hidden, frame_mask))
        return tuple(outputs)


class TransducerDecoderGraph(nn.Module):
    """sherpa-onnx / icefall decoder step: `y` (batch, context_size) int64, the last tokens (-1 = none) →
    `decoder_out` (batch, joiner_dim), the predictor output already projected by the joiner."""

    input_names = ["y"]
    output_names = ["decoder_out"]

    def __init__(self, transducer: nn.Module):
        super().__init__()
        self.predictor = transducer.predictor
        self.decoder_proj = transducer.joiner.decoder_proj

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder_proj(self.predictor(y, need_pad=False)).squeeze(1)


class TransducerJoinerGraph(nn.Module):
    """sherpa-onnx / icefall joiner: projected `encoder_out` and `decoder_out` (batch, joiner_dim) → `logit`
    (batch, vocab)."""

    input_names = ["encoder_out", "decoder_out"]
    output_names = ["logit"]

    def __init__(self, transducer: nn.Module):
        super().__init__()
        self.joiner = transducer.joiner

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.joiner(encoder_out, decoder_out, project_input=False)
