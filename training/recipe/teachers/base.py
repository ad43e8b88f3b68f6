"""The teacher adapter interface: frozen models that turn clean 16 kHz audio into distillation targets."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from modeling_mt2kd.masks import lengths_to_mask


@dataclass
class TeacherTargets:
    """What one teacher says about a batch of utterances.

    Attributes:
        values: `(batch, frames, dim)` frame-level targets at the student's 25 Hz frame rate, zero past
            each utterance's length; or `(batch, dim)` clip-level targets (tag probabilities,
            speaker embeddings).
        lengths: `(batch,)` int64 valid frames per utterance for frame-level targets; None for
            clip-level targets.
    """

    values: torch.Tensor
    lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        expected_dims = 2 if self.lengths is None else 3
        if self.values.dim() != expected_dims:
            kind = "clip-level targets (no lengths)" if self.lengths is None else "frame-level targets (with lengths)"
            raise ValueError(
                f"{kind} need values of {expected_dims} dims; got shape {tuple(self.values.shape)}"
            )
        if self.lengths is not None and tuple(self.lengths.shape) != (self.values.shape[0],):
            raise ValueError(
                f"lengths must have shape ({self.values.shape[0]},) to match values {tuple(self.values.shape)}; "
                f"got {tuple(self.lengths.shape)}"
            )

    @property
    def is_frame_level(self) -> bool:
        return self.lengths is not None

    @property
    def mask(self) -> torch.Tensor | None:
        """`(batch, frames)` bool, True on valid frames; None for clip-level targets."""
        if self.lengths is None:
            return None
        return lengths_to_mask(self.lengths, self.values.shape[1])

    def to(self, device: torch.device | str) -> TeacherTargets:
        lengths = None if self.lengths is None else self.lengths.to(device)
        return TeacherTargets(self.values.to(device), lengths)


class Teacher(ABC):
    """A frozen teacher model behind one call: `(waveforms, waveform_lengths) -> TeacherTargets`.

    Teachers see clean 16 kHz audio. The wrapped model is put in eval mode with gradients off; on
    CUDA it runs under bf16 autocast, on CPU in float32; targets always come back as float32 on
    the teacher's device. A teacher is not an `nn.Module`, so a student's `.train()`, optimiser
    or DDP wrapper never reaches it.

    Attributes:
        name: where the teacher was loaded from (Hub id or folder), for logs and cache metadata.
        target_key: which distillation target it produces: "whisper", "tagging" or "speaker".
        sample_rate: the input rate the adapter expects, in Hz.
    """

    target_key: ClassVar[str]
    sample_rate: ClassVar[int] = 16000

    def __init__(self, model: nn.Module, name: str) -> None:
        self.model = model.eval().requires_grad_(False)
        self.name = name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> Teacher:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        """Targets for `waveforms` `(batch, samples)` float at 16 kHz, zero-padded past
        `waveform_lengths` `(batch,)` int64 samples."""
        self._check_inputs(waveforms, waveform_lengths)
        waveforms = waveforms.to(self.device, torch.float32)
        waveform_lengths = waveform_lengths.to(self.device, torch.long)
        targets = self._targets(waveforms, waveform_lengths)
        return TeacherTargets(targets.values.float(), targets.lengths)

    @abstractmethod
    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        """The model-specific part of `__call__`, on checked inputs already on `self.device`; runs
        the network under `self._model_precision()` and feature extraction outside it."""

    def _model_precision(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA, nothing (float32) elsewhere. Only around the network: feature
        extractors keep float32 (Whisper's log-mel would lose precision, and numpy has no bf16)."""
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _check_inputs(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> None:
        if waveforms.dim() != 2 or not waveforms.is_floating_point():
            raise ValueError(
                f"{type(self).__name__} expects float waveforms of shape (batch, samples) at "
                f"{self.sample_rate} Hz; got {waveforms.dtype} of shape {tuple(waveforms.shape)} "
                "(down-mix and stack utterances first)"
            )
        if tuple(waveform_lengths.shape) != (waveforms.shape[0],):
            raise ValueError(
                f"waveform_lengths must have shape ({waveforms.shape[0]},), one length per waveform; "
                f"got {tuple(waveform_lengths.shape)}"
            )
        bad = (waveform_lengths < 1) | (waveform_lengths > waveforms.shape[1])
        if bad.any():
            index = int(bad.nonzero()[0])
            raise ValueError(
                f"waveform_lengths[{index}] = {int(waveform_lengths[index])} is outside [1, {waveforms.shape[1]}] "
                "(the padded number of samples); lengths count valid samples per utterance"
            )

    @staticmethod
    def _unpadded_arrays(waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> list[np.ndarray]:
        """Each utterance's valid samples as a float32 numpy array, as Hugging Face feature extractors take them."""
        waveforms = waveforms.float().cpu()
        return [waveforms[index, :length].numpy() for index, length in enumerate(waveform_lengths.tolist())]
