"""Configuration of the MT2KD encoder (Zipformer2) and its task heads."""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Sequence

from transformers import PreTrainedConfig

from .chunking import chunking_problems

PER_STACK_FIELDS = (
    "num_encoder_layers",
    "downsampling_factor",
    "encoder_dim",
    "encoder_unmasked_dim",
    "num_attention_heads",
    "query_head_dim",
    "value_head_dim",
    "pos_head_dim",
    "feedforward_dim",
    "cnn_module_kernel",
)

FBANK_HOP_SAMPLES = 160  # 10 ms at 16 kHz
SUBSAMPLING_FACTOR = 2  # Conv2dSubsampling: (T - 7) // 2
# Fewest fbank frames that give one encoder output frame: Conv2dSubsampling keeps (T - 7) // 2 frames.
# The front end and pipelines check it; the model checks it only in eager mode (a value check is a host sync).
MIN_INPUT_FRAMES = 9
# Label id the CTC, transducer and single-label classification losses skip: the padding of label
# batches. Defined here, the one module that the model, processor and training code all import.
IGNORE_INDEX = -100
# transformers' common attribute names; derived from the per-stack sizes, so never stored.
DERIVED_ATTRIBUTES = {"hidden_size": "encoder_dim", "num_hidden_layers": "num_encoder_layers"}
PROBLEM_TYPES = ("multi_label_classification", "single_label_classification")


def audioset_labels() -> list[str]:
    """The 527 AudioSet display names in the teachers' (BEATs/AST) output order."""
    text = resources.files("configuration_mt2kd").joinpath("audioset_labels.json").read_text(encoding="utf-8")
    return json.loads(text)["labels"]


def _per_stack(name: str, value: int | Sequence[int], num_stacks: int) -> tuple[int, ...]:
    """Expand a scalar to one value per stack; check a sequence has one value per stack."""
    if isinstance(value, int):
        return (value,) * num_stacks
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * num_stacks
    if len(value) != num_stacks:
        raise ValueError(
            f"{name} has {len(value)} values but num_encoder_layers has {num_stacks} stacks; "
            f"give one value per stack or a single value for all"
        )
    return value


class MT2KDConfig(PreTrainedConfig):
    r"""Configuration of an MT2KD model: a Zipformer2 encoder with CTC, transducer, audio-tagging,
    speaker and distillation heads.

    Encoder sizes are per stack (tuples of equal length; a single value is broadcast). The encoder
    takes 80-bin fbank at 100 Hz and returns `max(encoder_dim)` channels at 25 Hz, so one output
    frame covers `inputs_to_logits_ratio` = 640 input samples at 16 kHz.

    transformers' common attributes are read-only and derived: `hidden_size` = `max(encoder_dim)`
    (the encoder's output width, also `output_dim`) and `num_hidden_layers` = `sum(num_encoder_layers)`
    (Zipformer layers over all stacks). They are not saved; a config.json that carries them must agree.

    Args:
        num_mel_bins: fbank bins of the input features.
        subsampling_channels: channels of the three Conv2d layers of the front-end subsampling.
        num_encoder_layers, downsampling_factor, encoder_dim, encoder_unmasked_dim,
        num_attention_heads, query_head_dim, value_head_dim, pos_head_dim, feedforward_dim,
        cnn_module_kernel: per-stack Zipformer2 sizes (icefall names, `num_heads` →
            `num_attention_heads`).
        pos_dim: dimension of the relative positional encoding.
        output_downsampling_factor: final downsampling of the combined stacks (50 Hz → 25 Hz).
        dropout_schedule: `((batch_count, p), ...)` piecewise-linear dropout used in training.
        warmup_batches: batch count over which the layer-skip and bypass regularisers anneal.
        vocab_size, blank_id: BPE vocabulary of the CTC and transducer heads (blank shared).
        decoder_dim, joiner_dim, context_size: stateless transducer predictor and joiner sizes.
        use_ctc, use_transducer, use_audio_tagging, use_speaker: which stage-2 heads exist.
        speaker_embedding_dim, speaker_attention_channels: speaker head (attentive statistics
            pooling → linear embedding).
        num_speakers: classes of the training-only speaker classifier.
        speaker_loss: "cross_entropy" (the authors') or "aam" (additive angular margin).
        aam_margin, aam_scale: additive-angular-margin loss settings.
        whisper_dim: teacher (Whisper encoder) width for stage-1 distillation.
        teacher_frames_per_frame: consecutive 50 Hz teacher frames stacked per 25 Hz student frame.
        ctc_loss_weight, transducer_loss_weight, tagging_loss_weight, speaker_loss_weight: stage-2
            loss weights.
        whisper_kd_weight, tagging_kd_weight, speaker_kd_weight: stage-1 loss weights.
        ctc_zero_infinity: passed to the CTC loss.
        transducer_loss: "pruned" (the authors' recipe: a smoothed "simple" loss picks
            `prune_range` symbols per frame for the full joiner; memory B·T·prune_range·V) or
            "full" (torchaudio's RNN-T loss over the whole B·T·U·V lattice; the simple
            projections then get no gradient).
        simple_loss_scale, simple_lm_scale, simple_am_scale: weight and smoothing of the simple loss.
        transducer_warmup_batches: batches over which the simple loss weight falls from 1 to
            `simple_loss_scale` and the pruned loss weight rises from 0.1 to 1 (icefall's warm-up).
        causal: a streaming (chunk-causal) encoder: attention limited to the current chunk and a left
            context, chunk-causal depthwise convolutions (the authors' `--causal 1`).
        chunk_size: inference chunk in 50 Hz frames (the front end's output rate; 16 = 320 ms); a
            streaming chunk is `2 * chunk_size` fbank frames in and `chunk_size / 2` output frames out.
            -1 = no chunking (full context). Used only when `causal`.
        left_context_frames: inference left context in 50 Hz frames; the full (simulated) forward
            rounds it down to whole chunks, as the authors' code does. -1 = unlimited (full forward only).
        training_chunk_sizes, training_left_context_frames: the lists a causal model samples one value
            from per training batch (the authors' `--chunk-size 16,32,64,-1`,
            `--left-context-frames 64,128,256,-1`).
        problem_type: the loss of `MT2KDForAudioClassification` (and the multi-task tagging head):
            "multi_label_classification" (default; per-class sigmoid BCE on multi-hot or soft
            targets (batch, num_labels)) or "single_label_classification" (softmax cross-entropy on
            class indices (batch,)).
    """

    model_type = "mt2kd"

    def __init__(
        self,
        num_mel_bins: int = 80,
        subsampling_channels: Sequence[int] = (8, 32, 128),
        num_encoder_layers: Sequence[int] = (2, 2, 3, 4, 3, 2),
        downsampling_factor: int | Sequence[int] = (1, 2, 4, 8, 4, 2),
        encoder_dim: int | Sequence[int] = (192, 256, 384, 512, 384, 256),
        encoder_unmasked_dim: int | Sequence[int] = (192, 192, 256, 256, 256, 192),
        num_attention_heads: int | Sequence[int] = (4, 4, 4, 8, 4, 4),
        query_head_dim: int | Sequence[int] = 32,
        value_head_dim: int | Sequence[int] = 12,
        pos_head_dim: int | Sequence[int] = 4,
        pos_dim: int = 48,
        feedforward_dim: int | Sequence[int] = (512, 768, 1024, 1536, 1024, 768),
        cnn_module_kernel: int | Sequence[int] = (31, 31, 15, 15, 15, 31),
        output_downsampling_factor: int = 2,
        dropout_schedule: Sequence[Sequence[float]] = ((0.0, 0.3), (20000.0, 0.1)),
        warmup_batches: float = 4000.0,
        vocab_size: int = 500,
        blank_id: int = 0,
        decoder_dim: int = 512,
        joiner_dim: int = 512,
        context_size: int = 2,
        use_ctc: bool = True,
        use_transducer: bool = True,
        use_audio_tagging: bool = True,
        use_speaker: bool = True,
        speaker_embedding_dim: int = 192,
        speaker_attention_channels: int = 128,
        num_speakers: int = 1,
        speaker_loss: str = "cross_entropy",
        aam_margin: float = 0.2,
        aam_scale: float = 30.0,
        whisper_dim: int = 1280,
        teacher_frames_per_frame: int = 2,
        ctc_loss_weight: float = 0.1,
        transducer_loss_weight: float = 1.0,
        tagging_loss_weight: float = 1.0,
        speaker_loss_weight: float = 1.0,
        whisper_kd_weight: float = 1.0,
        tagging_kd_weight: float = 1.0,
        speaker_kd_weight: float = 1.0,
        ctc_zero_infinity: bool = True,
        transducer_loss: str = "pruned",
        prune_range: int = 5,
        simple_loss_scale: float = 0.5,
        simple_lm_scale: float = 0.25,
        simple_am_scale: float = 0.0,
        transducer_warmup_batches: float = 2000.0,
        causal: bool = False,
        chunk_size: int = 16,
        left_context_frames: int = 128,
        training_chunk_sizes: Sequence[int] = (16, 32, 64, -1),
        training_left_context_frames: Sequence[int] = (64, 128, 256, -1),
        **kwargs,
    ):
        # Over 60 lines on purpose: transformers' config convention, one keyword argument and one attribute per setting
        # (as PreTrainedConfig subclasses write them); the checks are in _validate.
        num_stacks = len(num_encoder_layers)
        self.num_mel_bins = num_mel_bins
        self.subsampling_channels = tuple(subsampling_channels)
        self.num_encoder_layers = tuple(int(n) for n in num_encoder_layers)
        self.downsampling_factor = _per_stack("downsampling_factor", downsampling_factor, num_stacks)
        self.encoder_dim = _per_stack("encoder_dim", encoder_dim, num_stacks)
        self.encoder_unmasked_dim = _per_stack("encoder_unmasked_dim", encoder_unmasked_dim, num_stacks)
        self.num_attention_heads = _per_stack("num_attention_heads", num_attention_heads, num_stacks)
        self.query_head_dim = _per_stack("query_head_dim", query_head_dim, num_stacks)
        self.value_head_dim = _per_stack("value_head_dim", value_head_dim, num_stacks)
        self.pos_head_dim = _per_stack("pos_head_dim", pos_head_dim, num_stacks)
        self.pos_dim = pos_dim
        self.feedforward_dim = _per_stack("feedforward_dim", feedforward_dim, num_stacks)
        self.cnn_module_kernel = _per_stack("cnn_module_kernel", cnn_module_kernel, num_stacks)
        self.output_downsampling_factor = output_downsampling_factor
        self.dropout_schedule = tuple(tuple(float(v) for v in point) for point in dropout_schedule)
        self.warmup_batches = float(warmup_batches)
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self.decoder_dim = decoder_dim
        self.joiner_dim = joiner_dim
        self.context_size = context_size
        self.use_ctc = use_ctc
        self.use_transducer = use_transducer
        self.use_audio_tagging = use_audio_tagging
        self.use_speaker = use_speaker
        self.speaker_embedding_dim = speaker_embedding_dim
        self.speaker_attention_channels = speaker_attention_channels
        self.num_speakers = num_speakers
        self.speaker_loss = speaker_loss
        self.aam_margin = aam_margin
        self.aam_scale = aam_scale
        self.whisper_dim = whisper_dim
        self.teacher_frames_per_frame = teacher_frames_per_frame
        self.ctc_loss_weight = ctc_loss_weight
        self.transducer_loss_weight = transducer_loss_weight
        self.tagging_loss_weight = tagging_loss_weight
        self.speaker_loss_weight = speaker_loss_weight
        self.whisper_kd_weight = whisper_kd_weight
        self.tagging_kd_weight = tagging_kd_weight
        self.speaker_kd_weight = speaker_kd_weight
        self.ctc_zero_infinity = ctc_zero_infinity
        self.transducer_loss = transducer_loss
        self.prune_range = prune_range
        self.simple_loss_scale = simple_loss_scale
        self.simple_lm_scale = simple_lm_scale
        self.simple_am_scale = simple_am_scale
        self.transducer_warmup_batches = float(transducer_warmup_batches)
        self.causal = bool(causal)
        self.chunk_size = int(chunk_size)
        self.left_context_frames = int(left_context_frames)
        self.training_chunk_sizes = tuple(int(v) for v in training_chunk_sizes)
        self.training_left_context_frames = tuple(int(v) for v in training_left_context_frames)
        derived_values = {name: kwargs.pop(name) for name in DERIVED_ATTRIBUTES if name in kwargs}
        if kwargs.get("problem_type") is None:
            kwargs["problem_type"] = "multi_label_classification"
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(enumerate(audioset_labels()))
        kwargs.setdefault("pad_token_id", blank_id)
        if kwargs.get("custom_pipelines"):
            kwargs["custom_pipelines"] = remote_only_pipelines(kwargs["custom_pipelines"])
        super().__init__(**kwargs)
        self._validate()
        self._check_derived_values(derived_values)

    @property
    def output_dim(self) -> int:
        """Channels of the encoder output (the widest stack)."""
        return max(self.encoder_dim)

    @property
    def inputs_to_logits_ratio(self) -> int:
        """Input samples (16 kHz) per output frame: 160 × 2 × output_downsampling_factor = 640."""
        return FBANK_HOP_SAMPLES * SUBSAMPLING_FACTOR * self.output_downsampling_factor

    @property
    def num_stacks(self) -> int:
        return len(self.num_encoder_layers)

    @property
    def hidden_size(self) -> int:
        """transformers' name for the encoder output width, `max(encoder_dim)` (read-only)."""
        return self.output_dim

    @hidden_size.setter
    def hidden_size(self, value: int) -> None:
        raise AttributeError(f"hidden_size is max(encoder_dim) and read-only; set encoder_dim instead (got {value})")

    @property
    def num_hidden_layers(self) -> int:
        """transformers' name for the total number of Zipformer layers, `sum(num_encoder_layers)` (read-only)."""
        return sum(self.num_encoder_layers)

    @num_hidden_layers.setter
    def num_hidden_layers(self, value: int) -> None:
        raise AttributeError(
            f"num_hidden_layers is sum(num_encoder_layers) and read-only; set num_encoder_layers instead (got {value})"
        )

    def _check_derived_values(self, given: dict[str, int]) -> None:
        """A config.json written with `hidden_size`/`num_hidden_layers` must agree with the per-stack sizes."""
        for name, value in given.items():
            if value != getattr(self, name):
                source = DERIVED_ATTRIBUTES[name]
                raise ValueError(
                    f"{name}={value} disagrees with {source}={getattr(self, source)} ({name}={getattr(self, name)}); "
                    f"{name} is derived from {source}: change {source}, or drop {name} from the config"
                )

    def _validate(self) -> None:
        problems = []
        if self.num_stacks == 0:
            problems.append("num_encoder_layers must name at least one stack")
        for i in range(self.num_stacks):
            if self.encoder_unmasked_dim[i] > self.encoder_dim[i]:
                problems.append(
                    f"encoder_unmasked_dim[{i}]={self.encoder_unmasked_dim[i]} exceeds encoder_dim[{i}]={self.encoder_dim[i]}"
                )
            if self.cnn_module_kernel[i] % 2 != 1:
                problems.append(f"cnn_module_kernel[{i}]={self.cnn_module_kernel[i]} must be odd")
            if self.downsampling_factor[i] < 1 or self.num_encoder_layers[i] < 1:
                problems.append(f"stack {i}: downsampling_factor and num_encoder_layers must be >= 1")
        if len(self.subsampling_channels) != 3:
            problems.append(f"subsampling_channels needs 3 values, got {self.subsampling_channels}")
        if not 0 <= self.blank_id < self.vocab_size:
            problems.append(f"blank_id={self.blank_id} must lie in [0, vocab_size={self.vocab_size})")
        if self.context_size < 1:
            problems.append(f"context_size={self.context_size} must be >= 1")
        if self.output_downsampling_factor < 1:
            problems.append("output_downsampling_factor must be >= 1")
        if self.speaker_loss not in ("cross_entropy", "aam"):
            problems.append(f"speaker_loss={self.speaker_loss!r} must be 'cross_entropy' or 'aam'")
        if self.transducer_loss not in ("pruned", "full"):
            problems.append(f"transducer_loss={self.transducer_loss!r} must be 'pruned' or 'full'")
        if self.prune_range < 1:
            problems.append(f"prune_range={self.prune_range} must be >= 1")
        if self.teacher_frames_per_frame < 1:
            problems.append("teacher_frames_per_frame must be >= 1")
        if self.problem_type not in PROBLEM_TYPES:
            problems.append(
                f"problem_type={self.problem_type!r} is not supported by the audio-classification heads; use "
                f"'multi_label_classification' (sigmoid BCE, e.g. AudioSet tags) or 'single_label_classification' "
                f"(softmax cross-entropy on class indices)"
            )
        if self.causal:
            problems += chunking_problems(self)
        if problems:
            raise ValueError("Invalid MT2KDConfig: " + "; ".join(problems))

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MT2KDConfig":
        """Build a named preset (see `PRESETS`), with keyword overrides."""
        from .presets import PRESETS

        if name not in PRESETS:
            raise ValueError(f"unknown MT2KD preset {name!r}; known presets: {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


def remote_only_pipelines(custom_pipelines: dict[str, dict]) -> dict[str, dict]:
    """The entries of config.json's `custom_pipelines` whose class is not the one registered for their task here.

    A saved or released folder names its pipelines as remote code, so that `trust_remote_code=True` finds them
    without the `mt2kd` package. Where `import processing_mt2kd` has registered the same classes under those tasks,
    the registered ones serve them: transformers looks a task up in `custom_pipelines` first and would demand
    `trust_remote_code=True` for a local folder otherwise.
    """
    pipelines_module = sys.modules.get("transformers.pipelines")  # not imported: nothing registered
    if pipelines_module is None:
        return custom_pipelines
    registered = pipelines_module.PIPELINE_REGISTRY.supported_tasks
    return {
        task: entry
        for task, entry in custom_pipelines.items()
        if not (
            task in registered
            and isinstance(registered[task]["impl"], type)
            and isinstance(entry, dict)
            and str(entry.get("impl", "")).rsplit(".", 1)[-1] == registered[task]["impl"].__name__
        )
    }
