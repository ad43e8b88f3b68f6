"""MT2KD model family: one Zipformer2 encoder, thin task heads that compute their loss in `forward`."""

from __future__ import annotations

import math
import os

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from huggingface_hub import try_to_load_from_cache
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput, XVectorOutput
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from configuration_mt2kd.presets import PRESETS
from configuration_mt2kd import IGNORE_INDEX, MIN_INPUT_FRAMES, MT2KDConfig

from .checkpointing import replaying_python_random
from .decoding import DecodedSequence
from .encoder import Zipformer2Encoder
from .encoder.streaming import StreamingEncoderOutput, new_streaming_state, run_streaming_chunk
from .encoder.streaming_state import EncoderStreamingState
from .encoder.attention import RelPositionAttentionWeights
from .encoder.bias_norm import BiasNorm
from .encoder.bypass import BypassModule
from .encoder.layer import Zipformer2Layer
from .encoder.causal_convolution import ChunkCausalDepthwiseConv1d
from .encoder.resampling import SimpleDownsample
from .heads import (
    CTCHead,
    SpeakerEmbeddingHead,
    TaggingHead,
    TransducerHead,
    WhisperProjection,
    clip_classification_loss,
    cosine_distance_loss,
    ctc_loss,
    frame_l1_loss,
    speaker_loss,
    stack_teacher_frames,
    tagging_loss,
)
from .heads.added import build_added_heads
from .generation import MT2KDGenerationMixin, decode_transducer
from .graph_capture import is_capturing_graph
from .masks import lengths_to_mask, mask_to_lengths
from .outputs import CTCOutput, DistillationOutput, MT2KDEncoderOutput, MultiTaskOutput, TransducerOutput


def masked_mean(per_sample: torch.Tensor, sample_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of a (batch,) loss over the samples where `sample_mask` is True (all when None).

    Masked samples contribute an exact 0 (even if their value is inf/NaN) but stay in the graph,
    so every head receives a gradient in every step (DDP never sees unused parameters).
    """
    if sample_mask is None:
        return per_sample.mean()
    sample_mask = sample_mask.to(torch.bool)
    kept = torch.where(sample_mask, per_sample, torch.zeros_like(per_sample))
    return kept.sum() / sample_mask.sum().clamp(min=1)


def check_input_lengths(input_lengths: torch.Tensor) -> None:
    """Eager-mode check that every utterance gives at least one output frame (a host sync, so the
    forward skips it while a graph is captured; the pipelines check the audio before)."""
    if bool((input_lengths < MIN_INPUT_FRAMES).any()):
        raise ValueError(
            f"every utterance needs at least {MIN_INPUT_FRAMES} fbank frames (~0.1 s) to give one output frame; "
            f"got lengths {input_lengths.tolist()}"
        )


# Top-level modules of the task heads. A folder saved with heads loads into the bare encoder (`AutoModel`) or into
# one head class: the other heads' weights are expected to be left out, and only other unexpected keys are reported.
HEAD_MODULE_NAMES = ("ctc_head", "transducer", "tagging_head", "speaker_head", "speaker_classifier", "whisper_projection")


def refuse_missing_preset(name: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> None:
    """Fail fast, with what to do, when `from_pretrained` is given a preset name that is neither a local folder nor
    a cached Hub repository (otherwise the Hub would be asked, with retries, for a repository that does not exist)."""
    if not isinstance(name, str) or name not in PRESETS or os.path.isdir(name):
        return
    if isinstance(try_to_load_from_cache(name, "config.json", cache_dir=cache_dir), str):
        return
    raise OSError(
        f"{name!r} is the name of an MT2KD preset, not a model folder: there is no folder {name!r} here and no cached "
        f"Hub repository of that name. Convert the authors' checkpoint into a folder of that name (`python -m "
        f"modeling_mt2kd.convert_icefall --checkpoint CHECKPOINT.pt --config {name} --output {name}`, see "
        f"docs/release.md), build a randomly initialised model with `MT2KDConfig.from_preset({name!r})`, or pass the "
        "Hub id (user/name) of a released model"
    )


class MT2KDPreTrainedModel(PreTrainedModel):
    config_class = MT2KDConfig
    config: MT2KDConfig
    base_model_prefix = "mt2kd"
    main_input_name = "input_features"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Zipformer2Layer"]
    # No data-dependent control flow or host sync in any forward (tests/test_graph_capture.py).
    _can_compile_fullgraph = True
    _keys_to_ignore_on_load_unexpected = [rf"^{name}\." for name in HEAD_MODULE_NAMES]
    # `output_attentions=True` records each layer's attention weights (one module per Zipformer layer).
    _can_record_outputs = {"attentions": RelPositionAttentionWeights}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with a clear, immediate error for a preset name that is not a folder."""
        refuse_missing_preset(pretrained_model_name_or_path, kwargs.get("cache_dir"))
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def _set_gradient_checkpointing(self, enable: bool = True, gradient_checkpointing_func=checkpoint, **kwargs):
        """transformers' checkpointing switch, with a checkpoint function that also replays the
        Zipformer layers' Python random numbers in the recomputation (see `checkpointing`)."""
        super()._set_gradient_checkpointing(
            enable=enable, gradient_checkpointing_func=replaying_python_random(gradient_checkpointing_func), **kwargs
        )

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default init, scaled where the authors' recipe starts a layer smaller."""
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            scale = getattr(module, "initial_scale", 1.0)
            fan_in = module.weight[0].numel()
            bound = scale / math.sqrt(fan_in)
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                bias_bound = 0.1 * scale if hasattr(module, "initial_scale") else bound
                init.uniform_(module.bias, -bias_bound, bias_bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, 0.0, 1.0)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, BiasNorm):
            init.constant_(module.log_scale, 1.0)
            init.normal_(module.bias, 0.0, 1e-4)
        elif isinstance(module, BypassModule):
            init.constant_(module.bypass_scale, 0.5)
        elif isinstance(module, Zipformer2Layer):
            init.constant_(module.bypass_scale, 0.5)
        elif isinstance(module, SimpleDownsample):
            init.zeros_(module.bias)
        elif isinstance(module, ChunkCausalDepthwiseConv1d):
            init.zeros_(module.chunkwise_conv_scale)

    def _input_lengths(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return torch.full((input_features.shape[0],), input_features.shape[1], device=input_features.device)
        return mask_to_lengths(attention_mask)


class MT2KDModel(MT2KDPreTrainedModel):
    """The bare encoder: fbank (batch, frames, 80) at 100 Hz → hidden states (batch, frames', hidden)
    at 25 Hz, where frames' = ((frames - 7) // 2 + 1) // 2 and hidden = max(encoder_dim)."""

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.encoder = Zipformer2Encoder(config)
        self.post_init()

    @capture_outputs
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        *,
        output_attentions: bool | None = None,
    ) -> MT2KDEncoderOutput:
        """
        Args:
            input_features: (batch, frames, num_mel_bins) log-mel fbank at 100 Hz.
            attention_mask: (batch, frames) 1 on valid frames (valid frames first); None = all valid.
            output_hidden_states: also return the 50 Hz front-end and stack outputs.
            batch_count: training batch index driving the scheduled regularisers (training only;
                None = their default values).
            output_attentions: also return each layer's attention weights (see `MT2KDEncoderOutput`;
                recorded by `capture_outputs`, default `config.output_attentions`).
            return_dict: False returns `to_tuple()` of the output (default `config.return_dict`).
        """
        if input_features.ndim != 3 or input_features.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"expected input_features of shape (batch, frames, {self.config.num_mel_bins}); "
                f"got {tuple(input_features.shape)}"
            )
        input_lengths = self._input_lengths(input_features, attention_mask)
        if not is_capturing_graph(input_features.device):
            check_input_lengths(input_lengths)
        # No mask means no padding: the encoder then skips every padding mask (no host sync needed).
        result = self.encoder(input_features, None if attention_mask is None else input_lengths, batch_count)
        output_mask = lengths_to_mask(result.lengths, result.last_hidden_state.shape[1]).long()
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return MT2KDEncoderOutput(
            last_hidden_state=result.last_hidden_state,
            attention_mask=output_mask,
            hidden_states=result.stack_outputs if output_hidden_states else None,
        )


    def init_streaming_state(
        self, batch_size: int = 1, chunk_size: int | None = None, left_context_frames: int | None = None
    ) -> EncoderStreamingState:
        """Zero streaming state for `batch_size` new streams of a causal model (see
        `encoder/streaming_state.py` for its layout). chunk_size / left_context_frames in 50 Hz frames,
        default the config's."""
        parameter = next(self.parameters())
        return new_streaming_state(
            self.config, batch_size, chunk_size, left_context_frames, parameter.device, parameter.dtype
        )

    @torch.no_grad()
    def streaming_forward(
        self,
        input_features: torch.Tensor,
        state: EncoderStreamingState,
        feature_lengths: torch.Tensor | None = None,
    ) -> StreamingEncoderOutput:
        """Encode one chunk of a stream (causal models, eval mode).

        Args:
            input_features: (batch, 2 * chunk_size + 13, num_mel_bins) fbank at 100 Hz: call k reads
                frames [k * 2 * chunk_size, k * 2 * chunk_size + 2 * chunk_size + 13) of each stream
                (13 frames of look-ahead, read again by the next call). A shorter last chunk is padded.
            state: from `init_streaming_state` or the previous call's output.
            feature_lengths: (batch,) valid frames per row (default: all).
        """
        encoder_out, lengths, state = run_streaming_chunk(self.encoder, input_features, state, feature_lengths)
        mask = lengths_to_mask(lengths, encoder_out.shape[1]).long()
        return StreamingEncoderOutput(last_hidden_state=encoder_out, attention_mask=mask, state=state)


class _MT2KDHeadModel(MT2KDPreTrainedModel):
    """Common encoder call for the head classes.

    Every head's `forward` takes `output_hidden_states`, `output_attentions` (see
    `MT2KDEncoderOutput`) and `return_dict` (False: a tuple of the output's fields that are set;
    default `config.return_dict`), and refuses unknown keyword arguments.
    """

    def _encode(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_hidden_states: bool | None,
        output_attentions: bool | None,
        batch_count: float | None,
    ) -> MT2KDEncoderOutput:
        return self.mt2kd(
            input_features,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
            batch_count=batch_count,
            output_attentions=output_attentions,
            return_dict=True,
        )


class MT2KDForCTC(MT2KDGenerationMixin, _MT2KDHeadModel):
    """Encoder + CTC head. `labels` (batch, max_tokens) padded with -100 give the CTC loss (mean
    over utterances of the per-utterance negative log-likelihood); `generate()` decodes with the CTC best path."""

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.mt2kd = MT2KDModel(config)
        self.ctc_head = CTCHead(config.output_dim, config.vocab_size, config.blank_id)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        output_attentions: bool | None = None,
    ) -> CTCOutput:
        encoded = self._encode(input_features, attention_mask, output_hidden_states, output_attentions, batch_count)
        logits = self.ctc_head(encoded.last_hidden_state, encoded.attention_mask)
        loss = None
        if labels is not None:
            per_utterance = ctc_loss(
                logits, mask_to_lengths(encoded.attention_mask), labels, self.config.blank_id,
                self.config.ctc_zero_infinity,
            )
            loss = per_utterance.mean()
        return CTCOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions,
            attention_mask=encoded.attention_mask,
        )


class MT2KDForRNNT(MT2KDGenerationMixin, _MT2KDHeadModel):
    """Encoder + stateless transducer. `labels` (batch, max_tokens) padded with -100 give the RNN-T
    loss; `generate()` decodes with greedy or modified beam search."""

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.mt2kd = MT2KDModel(config)
        self.transducer = TransducerHead.from_config(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        output_attentions: bool | None = None,
    ) -> TransducerOutput:
        encoded = self._encode(input_features, attention_mask, output_hidden_states, output_attentions, batch_count)
        loss = None
        if labels is not None:
            lengths = mask_to_lengths(encoded.attention_mask)
            loss = transducer_loss(self.transducer, self.config, encoded.last_hidden_state, lengths, labels, batch_count).mean()
        return TransducerOutput(
            loss=loss,
            encoder_out=encoded.last_hidden_state,
            attention_mask=encoded.attention_mask,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


def transducer_loss(
    transducer: TransducerHead,
    config: MT2KDConfig,
    encoder_out: torch.Tensor,
    encoder_lengths: torch.Tensor,
    labels: torch.Tensor,
    batch_count: float | None,
) -> torch.Tensor:
    """Per-utterance transducer loss with the config's settings; the warm-up follows `batch_count`
    (finished when it is None)."""
    warmup_fraction = 1.0 if batch_count is None else batch_count / config.transducer_warmup_batches
    return transducer.loss(
        encoder_out, encoder_lengths, labels, config.transducer_loss, config.prune_range, config.simple_loss_scale,
        config.simple_lm_scale, config.simple_am_scale, warmup_fraction,
    )


class MT2KDForAudioClassification(_MT2KDHeadModel):
    """Encoder + audio-tagging head (multi-label over `config.id2label`). `labels` (batch,
    num_labels), multi-hot or soft, give the per-clip BCE summed over classes, averaged over clips."""

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.mt2kd = MT2KDModel(config)
        self.tagging_head = TaggingHead(config.output_dim, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        output_attentions: bool | None = None,
    ) -> SequenceClassifierOutput:
        encoded = self._encode(input_features, attention_mask, output_hidden_states, output_attentions, batch_count)
        logits = self.tagging_head(encoded.last_hidden_state, encoded.attention_mask.bool())
        loss = None
        if labels is not None:
            loss = clip_classification_loss(logits, labels, self.config.problem_type).mean()
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


class MT2KDForXVector(_MT2KDHeadModel):
    """Encoder + speaker head: `embeddings` (batch, speaker_embedding_dim) for verification; with
    `labels` (batch,) speaker ids, the classifier loss (cross-entropy or additive angular margin)."""

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.mt2kd = MT2KDModel(config)
        self.speaker_head = SpeakerEmbeddingHead.from_config(config)
        self.speaker_classifier = nn.Linear(config.speaker_embedding_dim, config.num_speakers)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        output_attentions: bool | None = None,
    ) -> XVectorOutput:
        encoded = self._encode(input_features, attention_mask, output_hidden_states, output_attentions, batch_count)
        embeddings = self.speaker_head(encoded.last_hidden_state, encoded.attention_mask.bool())
        loss = None
        if labels is None:
            logits = self.speaker_classifier(embeddings)
        else:
            per_utterance, logits = speaker_loss(
                embeddings, self.speaker_classifier, labels, self.config.speaker_loss, self.config.aam_margin,
                self.config.aam_scale,
            )
            loss = per_utterance.mean()
        return XVectorOutput(
            loss=loss, logits=logits, embeddings=embeddings, hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class MT2KDForMultiTask(MT2KDGenerationMixin, _MT2KDHeadModel):
    """Every stage-2 head from ONE encoder pass: CTC and transducer (ASR), tagging, speaker.

    Each task's loss is computed only when its labels are given, averaged over the samples whose
    task mask is True (all samples when no mask is given), and weighted by the config's loss
    weights. Heads are chosen by `config.use_ctc/use_transducer/use_audio_tagging/use_speaker`.
    """

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.mt2kd = MT2KDModel(config)
        hidden = config.output_dim
        self.ctc_head = CTCHead(hidden, config.vocab_size, config.blank_id) if config.use_ctc else None
        self.transducer = TransducerHead.from_config(config) if config.use_transducer else None
        self.tagging_head = TaggingHead(hidden, config.num_labels) if config.use_audio_tagging else None
        if config.use_speaker:
            self.speaker_head = SpeakerEmbeddingHead.from_config(config)
            self.speaker_classifier = nn.Linear(config.speaker_embedding_dim, config.num_speakers)
        else:
            self.speaker_head = self.speaker_classifier = None
        build_added_heads(self)  # heads of task-table rows (training_mt2kd.tasks): from_pretrained rebuilds them
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        tagging_labels: torch.Tensor | None = None,
        speaker_labels: torch.Tensor | None = None,
        asr_mask: torch.Tensor | None = None,
        tagging_mask: torch.Tensor | None = None,
        speaker_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        output_attentions: bool | None = None,
    ) -> MultiTaskOutput:
        """
        Args:
            labels: (batch, max_tokens) BPE ids padded with -100 (ASR: CTC and transducer).
            tagging_labels: (batch, num_labels) multi-hot.
            speaker_labels: (batch,) training speaker ids.
            asr_mask, tagging_mask, speaker_mask: (batch,) bool, which samples carry each task.
        """
        config = self.config
        encoded = self._encode(input_features, attention_mask, output_hidden_states, output_attentions, batch_count)
        output = MultiTaskOutput(
            last_hidden_state=encoded.last_hidden_state, attention_mask=encoded.attention_mask,
            hidden_states=encoded.hidden_states, attentions=encoded.attentions,
        )
        weighted_losses = []
        if labels is not None and (self.ctc_head is not None or self.transducer is not None):
            asr_labels = _blank_out_unused(labels, asr_mask, fill=IGNORE_INDEX)
        if self.ctc_head is not None:
            output.ctc_logits = self.ctc_head(output.last_hidden_state, output.attention_mask.bool())
            if labels is not None:
                output.ctc_loss = self._ctc_loss(output, asr_labels, asr_mask)
                weighted_losses.append(config.ctc_loss_weight * output.ctc_loss)
        if self.transducer is not None and labels is not None:
            per_sample = transducer_loss(
                self.transducer, config, output.last_hidden_state, mask_to_lengths(output.attention_mask), asr_labels,
                batch_count,
            )
            output.transducer_loss = masked_mean(per_sample, asr_mask)
            weighted_losses.append(config.transducer_loss_weight * output.transducer_loss)
        if self.tagging_head is not None:
            output.tagging_loss = self._tagging(output, tagging_labels, tagging_mask)
            if output.tagging_loss is not None:
                weighted_losses.append(config.tagging_loss_weight * output.tagging_loss)
        if self.speaker_head is not None:
            output.speaker_loss = self._speaker(output, speaker_labels, speaker_mask)
            if output.speaker_loss is not None:
                weighted_losses.append(config.speaker_loss_weight * output.speaker_loss)
        if weighted_losses:
            output.loss = torch.stack(weighted_losses).sum()
        return output

    def _ctc_loss(
        self, output: MultiTaskOutput, asr_labels: torch.Tensor, asr_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean CTC loss over the samples that carry ASR."""
        per_sample = ctc_loss(
            output.ctc_logits, mask_to_lengths(output.attention_mask), asr_labels, self.config.blank_id,
            self.config.ctc_zero_infinity,
        )
        return masked_mean(per_sample, asr_mask)

    def _tagging(
        self, output: MultiTaskOutput, tagging_labels: torch.Tensor | None, tagging_mask: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Set the clip logits; the mean tagging loss over the samples that carry tagging, or None without labels."""
        output.tagging_logits = self.tagging_head(output.last_hidden_state, output.attention_mask.bool())
        if tagging_labels is None:
            return None
        if self.config.problem_type == "single_label_classification":
            tagging_labels = _blank_out_unused(tagging_labels, tagging_mask, fill=IGNORE_INDEX)
        per_sample = clip_classification_loss(output.tagging_logits, tagging_labels, self.config.problem_type)
        return masked_mean(per_sample, tagging_mask)

    def _speaker(
        self, output: MultiTaskOutput, speaker_labels: torch.Tensor | None, speaker_mask: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Set the speaker embeddings and classifier logits; the mean speaker loss over the samples that carry the
        speaker task, or None without labels."""
        config = self.config
        output.speaker_embeddings = self.speaker_head(output.last_hidden_state, output.attention_mask.bool())
        if speaker_labels is None:
            output.speaker_logits = self.speaker_classifier(output.speaker_embeddings)
            return None
        per_sample, output.speaker_logits = speaker_loss(
            output.speaker_embeddings, self.speaker_classifier, _blank_out_unused(speaker_labels, speaker_mask, fill=0),
            config.speaker_loss, config.aam_margin, config.aam_scale,
        )
        return masked_mean(per_sample, speaker_mask)

    @torch.no_grad()
    def decode_transducer(
        self,
        encoder_out: torch.Tensor,
        attention_mask: torch.Tensor,
        decoding_method: str = "greedy_search",
        beam: int = 4,
        max_symbols_per_frame: int = 1,
    ) -> list[DecodedSequence]:
        """Transducer search over this model's encoder output (batch, frames, hidden) at 25 Hz: `decode` restricted
        to the transducer's methods (kept for its callers; `decode` also runs CTC)."""
        if self.transducer is None:
            raise ValueError("this model has no transducer head (config.use_transducer=False)")
        return decode_transducer(
            self.transducer, encoder_out, mask_to_lengths(attention_mask), decoding_method, beam, max_symbols_per_frame
        )


def _blank_out_unused(labels: torch.Tensor, sample_mask: torch.Tensor | None, fill: int) -> torch.Tensor:
    """Replace the labels of samples without the task (their loss is masked anyway) by `fill`."""
    if sample_mask is None:
        return labels
    keep = sample_mask.to(torch.bool).view(-1, *([1] * (labels.ndim - 1)))
    return torch.where(keep, labels, torch.full_like(labels, fill))


class MT2KDForDistillation(_MT2KDHeadModel):
    """Stage 1: the student with its three distillation heads (Whisper-frame projection, tagging,
    speaker embedding). Teacher targets give the losses:

    - `whisper_targets` (batch, teacher_frames, whisper_dim) at 50 Hz, or already stacked
      (batch, frames, frames_per_frame · whisper_dim) at 25 Hz: L1 over valid frames;
    - `tagging_targets` (batch, num_labels) teacher probabilities: BCE;
    - `speaker_targets` (batch, speaker_embedding_dim) teacher embeddings: 1 - cosine.
    """

    def __init__(self, config: MT2KDConfig):
        super().__init__(config)
        self.mt2kd = MT2KDModel(config)
        hidden = config.output_dim
        self.whisper_projection = WhisperProjection(hidden, config.whisper_dim, config.teacher_frames_per_frame)
        self.tagging_head = TaggingHead(hidden, config.num_labels)
        self.speaker_head = SpeakerEmbeddingHead.from_config(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        whisper_targets: torch.Tensor | None = None,
        tagging_targets: torch.Tensor | None = None,
        speaker_targets: torch.Tensor | None = None,
        whisper_mask: torch.Tensor | None = None,
        tagging_mask: torch.Tensor | None = None,
        speaker_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        batch_count: float | None = None,
        output_attentions: bool | None = None,
    ) -> DistillationOutput:
        config = self.config
        encoded = self._encode(input_features, attention_mask, output_hidden_states, output_attentions, batch_count)
        hidden, frame_mask = encoded.last_hidden_state, encoded.attention_mask.bool()
        output = DistillationOutput(
            whisper_prediction=self.whisper_projection(hidden),
            tagging_logits=self.tagging_head(hidden, frame_mask),
            speaker_embeddings=self.speaker_head(hidden, frame_mask),
            last_hidden_state=hidden,
            attention_mask=encoded.attention_mask,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        weighted_losses = []
        if whisper_targets is not None:
            targets = self._stacked_whisper_targets(whisper_targets, hidden.shape[1])
            per_sample = frame_l1_loss(output.whisper_prediction, targets, frame_mask)
            output.whisper_loss = masked_mean(per_sample, whisper_mask)
            weighted_losses.append(config.whisper_kd_weight * output.whisper_loss)
        if tagging_targets is not None:
            output.tagging_loss = masked_mean(tagging_loss(output.tagging_logits, tagging_targets), tagging_mask)
            weighted_losses.append(config.tagging_kd_weight * output.tagging_loss)
        if speaker_targets is not None:
            per_sample = cosine_distance_loss(output.speaker_embeddings, speaker_targets)
            output.speaker_loss = masked_mean(per_sample, speaker_mask)
            weighted_losses.append(config.speaker_kd_weight * output.speaker_loss)
        if weighted_losses:
            output.loss = torch.stack(weighted_losses).sum()
        return output

    def _stacked_whisper_targets(self, targets: torch.Tensor, num_frames: int) -> torch.Tensor:
        config = self.config
        stacked_dim = config.teacher_frames_per_frame * config.whisper_dim
        if targets.shape[-1] == stacked_dim and config.teacher_frames_per_frame > 1:
            # Already stacked: one stacked frame per output frame, cut or its last frame repeated.
            return stack_teacher_frames(targets, num_frames, frames_per_frame=1)
        if targets.shape[-1] != config.whisper_dim:
            raise ValueError(
                f"whisper_targets must have {config.whisper_dim} (50 Hz frames) or {stacked_dim} (stacked 25 Hz "
                f"frames) channels; got {targets.shape[-1]}. Check config.whisper_dim against the teacher."
            )
        return stack_teacher_frames(targets, num_frames, config.teacher_frames_per_frame)
