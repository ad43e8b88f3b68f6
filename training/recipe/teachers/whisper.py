"""Whisper encoder frames as the ASR distillation target, computed on unpadded audio."""

from __future__ import annotations

import torch
from torch import nn
from transformers import WhisperFeatureExtractor, WhisperModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from modeling_mt2kd.masks import lengths_to_mask

from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets
from training_mt2kd.recipe.teachers.frame_alignment import check_frames_per_student_frame, stack_to_student_frames, student_num_frames


class WhisperEncoderTeacher(Teacher):
    """Whisper encoder hidden states, stacked to the student's 25 Hz frames.

    Whisper is trained on log-mels padded to 30 s; like the paper, this adapter runs it on each
    utterance's real length instead: the log-mel is computed per utterance on its own samples, the
    positional embeddings are cut to the number of frames, and padded frames are masked out of
    attention, so a padded batch gives the same valid frames as each utterance run alone.
    `transformers`' `WhisperEncoder.forward` insists on 3000 mel frames, so this adapter runs the
    encoder's own modules (convolutions, positional table, layers, final norm) itself.

    Targets: `values` `(batch, T25, frames_per_student_frame · d_model)` with `lengths` = T25 per
    utterance (see `frame_alignment` for how the lengths line up with the student's).

    Args:
        encoder: the Whisper encoder (e.g. `WhisperModel.get_encoder()`).
        feature_extractor: the matching `WhisperFeatureExtractor` (80 or 128 mel bins).
        layer: which hidden state to distil: `k` in `[0, encoder_layers)` is the output of layer `k`
            (0 = the input embeddings, as `hidden_states[k]` in transformers); None or
            `encoder_layers` is the last layer after the final layer norm (the paper's target).
        frames_per_student_frame: 50 Hz teacher frames stacked per 25 Hz student frame.
    """

    target_key = "whisper"

    def __init__(
        self,
        encoder: WhisperEncoder,
        feature_extractor: WhisperFeatureExtractor,
        *,
        name: str = "whisper",
        layer: int | None = None,
        frames_per_student_frame: int = 2,
    ) -> None:
        num_layers = len(encoder.layers)
        layer = num_layers if layer is None else layer
        if not 0 <= layer <= num_layers:
            raise ValueError(
                f"layer={layer} is out of range for a Whisper encoder with {num_layers} layers; "
                f"use 0..{num_layers} ({num_layers} or None = last layer after the final layer norm)"
            )
        if feature_extractor.feature_size != encoder.config.num_mel_bins:
            raise ValueError(
                f"the feature extractor makes {feature_extractor.feature_size} mel bins but the encoder expects "
                f"{encoder.config.num_mel_bins}; load both from the same checkpoint"
            )
        if feature_extractor.sampling_rate != self.sample_rate:
            raise ValueError(
                f"expected a Whisper feature extractor at {self.sample_rate} Hz; "
                f"got {feature_extractor.sampling_rate} Hz"
            )
        check_frames_per_student_frame(frames_per_student_frame)
        super().__init__(encoder, name)
        self.feature_extractor = feature_extractor
        self.layer = layer
        self.frames_per_student_frame = frames_per_student_frame

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        layer: int | None = None,
        frames_per_student_frame: int = 2,
        **hub_kwargs,
    ) -> WhisperEncoderTeacher:
        """Load from a Hub id or folder holding a `WhisperModel` or `WhisperForConditionalGeneration`
        checkpoint (the decoder is dropped) and its preprocessor config. `hub_kwargs` (revision,
        cache_dir, local_files_only, token) go to both `from_pretrained` calls."""
        # WhisperModel.from_pretrained also reads WhisperForConditionalGeneration checkpoints
        # (it strips their "model." prefix); only the encoder is kept.
        encoder = WhisperModel.from_pretrained(name_or_path, dtype=dtype, **hub_kwargs).get_encoder()
        feature_extractor = WhisperFeatureExtractor.from_pretrained(name_or_path, **hub_kwargs)
        teacher = cls(
            encoder,
            feature_extractor,
            name=name_or_path,
            layer=layer,
            frames_per_student_frame=frames_per_student_frame,
        )
        return teacher.to(device)

    @property
    def target_dim(self) -> int:
        """Width of one 25 Hz target: `frames_per_student_frame · d_model` (2560 for large-v3)."""
        return self.frames_per_student_frame * self.model.config.d_model

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        student_lengths = student_num_frames(waveform_lengths)
        if bool((student_lengths < 1).any()):
            index = int((student_lengths < 1).nonzero()[0])
            raise ValueError(
                f"utterance {index} has {int(waveform_lengths[index])} samples, too short for one student frame; "
                "filter out utterances shorter than 1360 samples (85 ms at 16 kHz)"
            )
        frames, frame_lengths = self._encode(waveforms, waveform_lengths)
        return stack_to_student_frames(frames, frame_lengths, student_lengths, self.frames_per_student_frame)

    def _log_mel(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-utterance log-mel `(batch, mel_bins, M_max)`, zero past each `M = samples // 160`, and M `(batch,)`."""
        # One call per utterance: the extractor's end-of-signal reflection padding and its
        # per-utterance max normalisation both change if the waveform carries batch padding.
        features = [
            self.feature_extractor(
                samples,
                sampling_rate=self.sample_rate,
                padding="longest",
                truncation=False,
                return_tensors="pt",
                device=str(self.device),
            ).input_features[0]
            for samples in self._unpadded_arrays(waveforms, waveform_lengths)
        ]
        mel_lengths = torch.tensor([feature.shape[-1] for feature in features], device=self.device)
        padded = nn.utils.rnn.pad_sequence([feature.T for feature in features], batch_first=True)
        return padded.transpose(1, 2).to(self.device), mel_lengths

    def _encode(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states `(batch, W_max, d_model)` at 50 Hz and their valid lengths W `(batch,)`."""
        encoder = self.model
        features, mel_lengths = self._log_mel(waveforms, waveform_lengths)
        frame_lengths = (mel_lengths + 1) // 2  # conv2: kernel 3, stride 2, padding 1
        num_positions = encoder.embed_positions.num_embeddings
        if int(frame_lengths.max()) > num_positions:
            index = int(frame_lengths.argmax())
            raise ValueError(
                f"utterance {index} has {int(waveform_lengths[index])} samples "
                f"({int(waveform_lengths[index]) / self.sample_rate:.1f} s), longer than the Whisper encoder's "
                f"{num_positions} positions ({num_positions * 2 * 160 / self.sample_rate:.0f} s); "
                "filter or split utterances longer than that"
            )
        mel_mask = lengths_to_mask(mel_lengths, features.shape[-1])[:, None, :]
        with self._model_precision():
            # Zero conv1's output past each utterance so that conv2 sees the zero padding an unpadded run would.
            hidden = nn.functional.gelu(encoder.conv1(features.to(encoder.conv1.weight.dtype))) * mel_mask
            hidden = nn.functional.gelu(encoder.conv2(hidden)).transpose(1, 2)
            hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
            attention_mask = create_bidirectional_mask(
                config=encoder.config,
                inputs_embeds=hidden,
                attention_mask=lengths_to_mask(frame_lengths, hidden.shape[1]),
            )
            for encoder_layer in encoder.layers[: self.layer]:
                hidden = encoder_layer(hidden, attention_mask)
            if self.layer == len(encoder.layers):
                hidden = encoder.layer_norm(hidden)
        return hidden, frame_lengths
