"""The models under test, with random weights built from their configurations (nothing is downloaded), and
the inputs each takes for the same audio.

Every workload times the model call only: its inputs (fbank, log-mel, waveform) are computed once beforehand
and already sit on the device, as in the issue's anchors ("encoder only"). The student's own feature
extraction is timed as a separate row (`MT2KDFeatureExtractor`, numpy on the CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    WavLMConfig,
    WavLMForXVector,
    WhisperConfig,
    WhisperFeatureExtractor,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from modeling_mt2kd.masks import mask_to_lengths
from modeling_mt2kd.modeling_mt2kd import decode_transducer
from processing_mt2kd import MT2KDFeatureExtractor

SAMPLE_RATE = 16000

# openai/whisper-large-v3's encoder (the decoder is never built).
WHISPER_LARGE_V3 = dict(
    d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128,
    max_source_positions=1500,
)
# MIT/ast-finetuned-audioset-10-10-0.4593 is ASTConfig's defaults (ViT-base, 1024 frames × 128 bins) with 527 labels.
AST_BASE = dict(num_labels=527)
# microsoft/wavlm-base-plus-sv: WavLMConfig's defaults are the base(-plus) architecture and its x-vector head.
WAVLM_BASE_PLUS_SV = dict(use_weighted_layer_sum=True)


def test_audio(batch_size: int, duration_s: float, seed: int = 0) -> np.ndarray:
    """(batch, samples) float32 at 16 kHz: seeded noise at speech level. Random weights make the content
    irrelevant to the speed, and every model gets these same samples."""
    generator = np.random.default_rng(seed)
    return (0.1 * generator.standard_normal((batch_size, int(duration_s * SAMPLE_RATE)))).astype(np.float32)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


class Workload:
    """One model call to time: `inputs(waveforms)` once, then `run(inputs)` repeatedly."""

    name: str
    model: nn.Module
    family: str  # "student" or "teacher"

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device)
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def inputs(self, waveforms: np.ndarray) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def count_flops(self, inputs: dict[str, torch.Tensor]) -> int:
        """FLOPs of one call as `torch.utils.flop_counter` counts them (matmuls, convolutions, attention;
        element-wise work is not counted), on a meta-device copy when the model allows it (free) or else
        one real call."""
        meta_copy = self._meta_copy()
        if meta_copy is not None:
            try:
                meta_inputs = {name: torch.empty_like(value, device="meta") for name, value in inputs.items()}
                with torch.no_grad(), FlopCounterMode(display=False) as counter:
                    meta_copy.run(meta_inputs)
                return counter.get_total_flops()
            except Exception:  # data-dependent Python control flow cannot run on meta tensors
                pass
        # no_grad, not inference_mode: WavLM's weight-normed convolution cannot be counted under inference_mode.
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            self.run(inputs)
        return counter.get_total_flops()

    def _meta_copy(self) -> Workload | None:
        return None


class StudentOnePass(Workload):
    """`MT2KDForMultiTask`: encoder + CTC logits + tagging + speaker embedding in one forward, then transducer
    greedy search on the same encoder output (`max_symbols_per_frame=1`)."""

    family = "student"

    def __init__(self, preset: str, device: torch.device, dtype: torch.dtype, model: nn.Module | None = None):
        super().__init__(device, dtype)
        self.preset = preset
        self.name = f"{preset} one pass"
        if model is None:
            torch.manual_seed(0)
            with torch.device(device):
                model = MT2KDForMultiTask(MT2KDConfig.from_preset(preset))
            model = model.eval().to(dtype)
        self.model = model
        self.feature_extractor = MT2KDFeatureExtractor()

    def inputs(self, waveforms: np.ndarray) -> dict[str, torch.Tensor]:
        features = self.feature_extractor(list(waveforms), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {
            "input_features": self._to_device(features["input_features"]),
            "attention_mask": self._to_device(features["attention_mask"]),
        }

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        output = self.model(**inputs)
        hypotheses = decode_transducer(
            self.model.transducer, output.last_hidden_state, mask_to_lengths(output.attention_mask)
        )
        return output, hypotheses


class StudentEncoderOnly(StudentOnePass):
    """The same model's encoder alone (what the issue's icefall anchors time)."""

    def __init__(self, one_pass: StudentOnePass):
        super().__init__(one_pass.preset, one_pass.device, one_pass.dtype, model=one_pass.model)
        self.name = f"{one_pass.preset} encoder only"

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        return self.model.mt2kd(**inputs)


class StudentAutocast(StudentOnePass):
    """The fp32 student's one pass under `torch.autocast(dtype)` (the CPU bf16 experiment)."""

    def __init__(self, one_pass: StudentOnePass, autocast_dtype: torch.dtype):
        super().__init__(one_pass.preset, one_pass.device, one_pass.dtype, model=one_pass.model)
        self.autocast_dtype = autocast_dtype
        self.name = f"{one_pass.preset} one pass, {str(autocast_dtype).removeprefix('torch.')} autocast"

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return super().run(inputs)


class WhisperWindows(Workload):
    """Whisper large-v3 encoder as users run it: log-mel padded to its 30 s window (3000 frames), one
    window per utterance."""

    family = "teacher"
    name = "whisper-large-v3 encoder, 30 s windows"

    def __init__(self, device: torch.device, dtype: torch.dtype, build: bool = True):
        super().__init__(device, dtype)
        self.config = WhisperConfig(**WHISPER_LARGE_V3, attn_implementation="sdpa")
        self.feature_extractor = WhisperFeatureExtractor(feature_size=self.config.num_mel_bins)
        if build:
            torch.manual_seed(0)
            with torch.device(device):
                self.model = WhisperEncoder(self.config)
            self.model = self.model.eval().to(dtype)

    def inputs(self, waveforms: np.ndarray) -> dict[str, torch.Tensor]:
        features = self.feature_extractor(list(waveforms), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {"input_features": self._to_device(features["input_features"])}

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        return self.model(input_features=inputs["input_features"]).last_hidden_state

    def _meta_copy(self) -> Workload:
        copy = type(self)(torch.device("meta"), self.dtype, build=False)
        with torch.device("meta"):
            copy.model = WhisperEncoder(self.config).to(self.dtype)
        return copy


class WhisperUnpadded(WhisperWindows):
    """The same encoder on the utterance's own length (the stage-1 target path of
    `training/recipe/teachers/whisper.py`: positional embeddings cut to length). Every utterance of the batch
    has the same length here, so no attention mask is needed."""

    name = "whisper-large-v3 encoder, unpadded"

    @classmethod
    def sharing_weights(cls, windows: WhisperWindows) -> WhisperUnpadded:
        """The same encoder object as `windows` (one 637M-parameter copy in memory)."""
        unpadded = cls(windows.device, windows.dtype, build=False)
        unpadded.model = windows.model
        return unpadded

    def inputs(self, waveforms: np.ndarray) -> dict[str, torch.Tensor]:
        features = self.feature_extractor(
            list(waveforms), sampling_rate=SAMPLE_RATE, padding="longest", truncation=False, return_tensors="pt"
        )
        return {"input_features": self._to_device(features["input_features"])}

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        # `WhisperEncoder.forward` insists on 3000 mel frames, so its modules run here one by one.
        encoder = self.model
        hidden = nn.functional.gelu(encoder.conv1(inputs["input_features"]))
        hidden = nn.functional.gelu(encoder.conv2(hidden)).transpose(1, 2)
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        for layer in encoder.layers:
            hidden = layer(hidden, None)
        return encoder.layer_norm(hidden)


class ASTTagger(Workload):
    """AST-base AudioSet classifier (1024 fbank frames = 10.24 s per clip, 527 sigmoid outputs)."""

    family = "teacher"
    name = "ast-base audioset classifier"

    def __init__(self, device: torch.device, dtype: torch.dtype, build: bool = True):
        super().__init__(device, dtype)
        self.config = ASTConfig(**AST_BASE, attn_implementation="sdpa")
        self.feature_extractor = ASTFeatureExtractor()
        if build:
            torch.manual_seed(0)
            with torch.device(device):
                self.model = ASTForAudioClassification(self.config)
            self.model = self.model.eval().to(dtype)

    def inputs(self, waveforms: np.ndarray) -> dict[str, torch.Tensor]:
        features = self.feature_extractor(list(waveforms), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {"input_values": self._to_device(features["input_values"])}

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        return self.model(**inputs).logits.sigmoid()

    def _meta_copy(self) -> Workload:
        copy = type(self)(torch.device("meta"), self.dtype, build=False)
        with torch.device("meta"):
            copy.model = ASTForAudioClassification(self.config).to(self.dtype)
        return copy


class WavLMSpeaker(Workload):
    """WavLM-base-plus x-vector speaker model on the raw waveform (normalised per utterance)."""

    family = "teacher"
    name = "wavlm-base-plus-sv speaker model"

    def __init__(self, device: torch.device, dtype: torch.dtype):
        super().__init__(device, dtype)
        torch.manual_seed(0)
        with torch.device(device):
            self.model = WavLMForXVector(WavLMConfig(**WAVLM_BASE_PLUS_SV))
        self.model = self.model.eval().to(dtype)

    def inputs(self, waveforms: np.ndarray) -> dict[str, torch.Tensor]:
        samples = torch.from_numpy(waveforms)
        samples = (samples - samples.mean(dim=1, keepdim=True)) / (samples.std(dim=1, keepdim=True) + 1e-7)
        return {"input_values": self._to_device(samples)}

    def run(self, inputs: dict[str, torch.Tensor]) -> Any:
        return self.model(**inputs).embeddings


TEACHERS = {"whisper-30s": WhisperWindows, "whisper-unpadded": WhisperUnpadded, "ast": ASTTagger, "wavlm-sv": WavLMSpeaker}
