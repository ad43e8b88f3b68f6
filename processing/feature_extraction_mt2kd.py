"""80-bin Kaldi log-mel filter bank, as icefall computes it for MT2KD / Zipformer inference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np
import torch
import torchaudio.compliance.kaldi
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import PaddingStrategy, TensorType, logging

from configuration_mt2kd import MIN_INPUT_FRAMES

from .audio_io import MAX_CHANNELS, downmix_to_mono, pcm_to_float, resample

logger = logging.get_logger(__name__)

__all__ = ["MT2KDFeatureExtractor"]

# icefall pads feature batches with log(1e-10): the log of its fbank's energy floor.
LOG_ENERGY_FLOOR = math.log(1e-10)

# Frames computed at a time. Each frame is processed on its own (its own DC offset and pre-emphasis), so blocks give
# the same features as one pass, and the working memory of a long recording is one block's instead of ~30x its
# features (530 MB for 10 minutes in one pass).
FRAMES_PER_BLOCK = 2000

AudioArray = np.ndarray | torch.Tensor | Sequence[float]


class MT2KDFeatureExtractor(SequenceFeatureExtractor):
    r"""Kaldi filter-bank features exactly as icefall feeds its Zipformer encoders at inference.

    Options (kaldifeat / kaldi-native-fbank names): 16 kHz, 25 ms frames every 10 ms, povey window, pre-emphasis
    0.97, DC offset removed, power spectrum, 80 mel bins from 20 Hz to Nyquist − 400 Hz, log, dither 0,
    `snip_edges=False` (frame `t` is centred on sample `t * 160 + 80`, the signal mirrored at both ends, so
    `frames = (samples + 80) // 160`). The waveform is used as float in [-1, 1] without rescaling and without
    normalisation, as icefall does.

    Input rules of [`~MT2KDFeatureExtractor.__call__`] (transformers' convention: batch first):
    - a 1-D array / tensor / list of numbers is one mono recording;
    - a 2-D array / tensor `(batch, samples)` is a batch of equal-length mono recordings, one per row; a list (or
      tuple) of 1-D arrays is a batch of recordings of any lengths;
    - channels only where the caller says so: with `channel_axis` (0 for `(channels, samples)`, 1 or -1 for
      `(samples, channels)` as `soundfile.read` returns), a 2-D array is ONE multi-channel recording, a 3-D array a
      stacked batch of them and a list holds 1-D or 2-D recordings; channels are averaged. Without `channel_axis`,
      a 2-D array whose rows are too short to be recordings but whose columns could be channels (e.g.
      `(48000, 2)`), or a 2-D recording inside a list, is refused with the fix rather than guessed at;
    - float samples are used as they are (expected in [-1, 1]); int8/int16/int32/uint8 PCM is scaled to [-1, 1];
    - audio at another rate is resampled to `sampling_rate` when its rate is passed.

    Args:
        feature_size: mel bins per frame.
        sampling_rate: rate in Hz the features are computed at.
        padding_value: feature value of padded frames (icefall's log(1e-10)).
        frame_length_ms: analysis window in ms.
        frame_shift_ms: hop between frames in ms.
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 80,
        sampling_rate: int = 16000,
        padding_value: float = LOG_ENERGY_FLOOR,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms

    @property
    def hop_length(self) -> int:
        """Samples between frame starts (160 at 16 kHz)."""
        return int(self.sampling_rate * self.frame_shift_ms / 1000)

    @property
    def win_length(self) -> int:
        """Samples per analysis window (400 at 16 kHz)."""
        return int(self.sampling_rate * self.frame_length_ms / 1000)

    @property
    def min_model_input_samples(self) -> int:
        """Fewest samples the MT2KD encoder takes: `configuration_mt2kd.MIN_INPUT_FRAMES` (9) feature frames,
        1360 samples = 85 ms at 16 kHz. Features alone need only 5 ms (Kaldi mirrors the edges); the pipelines
        refuse audio shorter than this with this figure."""
        return MIN_INPUT_FRAMES * self.hop_length - self.hop_length // 2

    def num_frames(self, num_samples: int) -> int:
        """Feature frames for `num_samples` samples at `sampling_rate` (Kaldi's `snip_edges=False` rule)."""
        return (num_samples + self.hop_length // 2) // self.hop_length

    def __call__(
        self,
        raw_speech: AudioArray | Sequence[AudioArray],
        sampling_rate: int | None = None,
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = True,
        channel_axis: int | None = None,
    ) -> BatchFeature:
        """Compute features for one recording or a batch (see the class docstring for the accepted layouts).

        Args:
            raw_speech: one recording, a `(batch, samples)` array, or a list/tuple of recordings.
            sampling_rate: rate of `raw_speech` in Hz; other rates are resampled. `None` assumes `self.sampling_rate`
                and logs a warning.
            channel_axis: the channel axis of each multi-channel recording (0: `(channels, samples)`; 1 or -1:
                `(samples, channels)`); `None` (default): every recording is mono and a 2-D array is a batch.
            padding, max_length, truncation, pad_to_multiple_of: as in [`SequenceFeatureExtractor.pad`], in frames.
            return_tensors: `"pt"`, `"np"` or `None` (numpy when padded, else lists of per-recording arrays).
            return_attention_mask: also return the `(batch, frames)` mask, 1 on real frames.

        Returns:
            `input_features` `(batch, frames, feature_size)` float32 at 100 frames per second, padded with
            `padding_value`; `attention_mask` `(batch, frames)` int32.
        """
        # Over 60 lines only by its signature and docstring (transformers' feature-extractor arguments); the body
        # checks the rate and layout, computes each recording's fbank and pads.
        if sampling_rate is None:
            logger.warning(
                f"{self.__class__.__name__} got audio without a `sampling_rate`; assuming {self.sampling_rate} Hz. "
                "Pass `sampling_rate=` to avoid silently wrong features for audio at another rate."
            )
            sampling_rate = self.sampling_rate
        elif not isinstance(sampling_rate, Real) or isinstance(sampling_rate, bool) or sampling_rate <= 0:
            raise ValueError(
                f"sampling_rate must be a positive number of Hz, e.g. {self.sampling_rate}; got {sampling_rate!r}"
            )

        if channel_axis not in (None, 0, 1, -1):
            raise ValueError(
                f"channel_axis must be None (mono recordings), 0 for (channels, samples) or 1 / -1 for "
                f"(samples, channels); got {channel_axis!r}"
            )
        recordings = _split_recordings(raw_speech, channel_axis)
        features = []
        for index, recording in enumerate(recordings):
            name = "the audio" if len(recordings) == 1 else f"recording {index} of the batch"
            waveform = self._prepare_waveform(recording, sampling_rate, name, channel_axis)
            features.append(self._fbank(waveform))
            if not np.isfinite(features[-1]).all():  # finite samples so large that their power overflows float32
                raise ValueError(
                    f"{name} gives non-finite features: its samples reach {np.abs(waveform).max():.3g}, far outside "
                    "[-1, 1]; pass float audio scaled to [-1, 1] (integer PCM is scaled for you)"
                )

        batch = BatchFeature({"input_features": features})
        if padding is False or padding == PaddingStrategy.DO_NOT_PAD:
            if return_attention_mask:
                batch["attention_mask"] = [np.ones(len(f), dtype=np.int32) for f in features]
            batch.convert_to_tensors(return_tensors)
            return batch
        return self.pad(
            batch,
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors or "np",
        )

    def _prepare_waveform(
        self, recording: np.ndarray, sampling_rate: float, name: str, channel_axis: int | None = None
    ) -> np.ndarray:
        """Check one recording and bring it to a 1-D float32 waveform at `self.sampling_rate`.

        A 2-D recording is down-mixed along `channel_axis`; `None` takes its shorter axis as channels (at most
        `MAX_CHANNELS`): the pipelines' rule for their one-recording inputs.
        """
        if recording.dtype == np.bool_ or not np.issubdtype(recording.dtype, np.number):
            raise ValueError(f"{name} holds non-numeric values of dtype {recording.dtype}; pass audio samples")
        if np.issubdtype(recording.dtype, np.complexfloating):
            raise ValueError(f"{name} holds complex values; pass real-valued audio samples")
        if recording.ndim not in (1, 2):
            raise ValueError(
                f"{name} has shape {tuple(recording.shape)}; expected (samples,) for mono, (batch, samples) or a list "
                "for a batch, and with channel_axis (channels, samples) / (samples, channels) for multi-channel audio"
            )
        if recording.size == 0:
            raise ValueError(
                f"{name} is empty (shape {tuple(recording.shape)}); the MT2KD encoder needs at least "
                f"{self.min_model_input_samples} samples ({1000 * self.min_model_input_samples / self.sampling_rate:g} "
                "ms) of audio"
            )
        waveform = pcm_to_float(recording)
        if not np.isfinite(waveform).all():
            bad = int(np.flatnonzero(~np.isfinite(waveform))[0])
            if np.isfinite(recording.flat[bad]):
                raise ValueError(
                    f"{name} holds samples beyond the float32 range (e.g. {recording.flat[bad]:.3g} at flat index "
                    f"{bad}); pass float audio scaled to [-1, 1]"
                )
            raise ValueError(
                f"{name} contains NaN or infinite samples (first at flat index {bad}); remove or replace them "
                "(e.g. `np.nan_to_num`) before feature extraction"
            )
        waveform = downmix_to_mono(waveform, channel_axis)
        if sampling_rate != self.sampling_rate:
            waveform = resample(waveform, sampling_rate, self.sampling_rate)
        if self.num_frames(len(waveform)) == 0:
            raise ValueError(
                f"{name} is too short: {len(waveform)} samples at {self.sampling_rate} Hz give no feature frame; "
                f"pass at least {self.hop_length - self.hop_length // 2} samples "
                f"({1000 * (self.hop_length - self.hop_length // 2) / self.sampling_rate:g} ms)"
            )
        return waveform

    def _fbank(self, waveform: np.ndarray) -> np.ndarray:
        """`(frames, feature_size)` log-mel features of a 1-D float32 waveform at `self.sampling_rate`."""
        num_samples = len(waveform)
        num_frames = self.num_frames(num_samples)
        blocks = []
        for first_frame in range(0, num_frames, FRAMES_PER_BLOCK):
            block_frames = min(FRAMES_PER_BLOCK, num_frames - first_frame)
            blocks.append(self._fbank_block(waveform, first_frame, block_frames))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def _fbank_block(self, waveform: np.ndarray, first_frame: int, num_frames: int) -> np.ndarray:
        """`(num_frames, feature_size)` features of frames `first_frame ...` of the whole waveform."""
        num_samples = len(waveform)
        # Kaldi's snip_edges=False framing, built explicitly: torchaudio refuses inputs shorter than one window,
        # which Kaldi (and so icefall) accepts by mirroring. Sample indices outside [0, n) reflect as
        # -1 -> 0, n -> n - 1 (repeatedly for very short inputs), i.e. they are periodic in 2n.
        first_sample = self.hop_length // 2 - self.win_length // 2 + first_frame * self.hop_length
        indices = np.arange(first_sample, first_sample + (num_frames - 1) * self.hop_length + self.win_length)
        indices = np.mod(indices, 2 * num_samples)
        indices = np.where(indices >= num_samples, 2 * num_samples - 1 - indices, indices)
        framed_signal = torch.from_numpy(np.ascontiguousarray(waveform[indices], dtype=np.float32))
        features = torchaudio.compliance.kaldi.fbank(
            framed_signal[None],
            num_mel_bins=self.feature_size,
            sample_frequency=self.sampling_rate,
            frame_length=self.frame_length_ms,
            frame_shift=self.frame_shift_ms,
            dither=0.0,
            preemphasis_coefficient=0.97,
            remove_dc_offset=True,
            window_type="povey",
            round_to_power_of_two=True,
            snip_edges=True,
            low_freq=20.0,
            high_freq=-400.0,
            energy_floor=0.0,
            use_energy=False,
            use_log_fbank=True,
            use_power=True,
            raw_energy=True,
            htk_compat=False,
        )
        return features.numpy()


def _split_recordings(raw_speech: AudioArray | Sequence[AudioArray], channel_axis: int | None) -> list[np.ndarray]:
    """The recordings of a single or batched input, each as a numpy array (still unchecked).

    Without `channel_axis` every recording is 1-D: a 2-D array is a batch of rows. With it, a 2-D array is one
    multi-channel recording and a 3-D array a batch of them.
    """
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        array = _to_numpy(raw_speech)
        if channel_axis is None and array.ndim == 2:
            _check_rows_are_recordings(array)
            return list(array)
        if channel_axis is not None and array.ndim == 3:
            return list(array)
        return [array]
    if isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("got an empty list of audio; pass at least one recording")
        if all(isinstance(sample, (Real, np.number)) for sample in raw_speech):
            return [np.asarray(raw_speech)]
        recordings = [_to_numpy(recording) for recording in raw_speech]
        for index, recording in enumerate(recordings):
            if channel_axis is None and recording.ndim == 2:
                raise ValueError(
                    f"recording {index} of the batch has shape {tuple(recording.shape)}: a recording in a list is "
                    "mono (samples,); for multi-channel recordings pass channel_axis=0 for (channels, samples) or "
                    "channel_axis=-1 for (samples, channels) (as soundfile.read returns), and they are down-mixed"
                )
        return recordings
    raise ValueError(
        f"expected audio as a numpy array, a torch tensor, a list of numbers or a list of those; got a "
        f"{type(raw_speech).__name__}"
    )


def _check_rows_are_recordings(batch: np.ndarray) -> None:
    """Refuse a `(batch, samples)` array that looks like one `(samples, channels)` recording."""
    num_rows, num_samples = batch.shape
    if num_samples <= MAX_CHANNELS < num_rows:
        raise ValueError(
            f"a 2-D array is a batch of mono recordings, one per row (transformers' convention), but shape "
            f"{tuple(batch.shape)} would be {num_rows} recordings of {num_samples} samples. For one recording with "
            "channels last (as soundfile.read returns) pass channel_axis=-1; for (channels, samples) channel_axis=0"
        )


def _to_numpy(recording: AudioArray) -> np.ndarray:
    if isinstance(recording, torch.Tensor):
        recording = recording.detach().cpu()
        if recording.dtype in (torch.bfloat16, torch.float16):
            recording = recording.float()
        return recording.numpy()
    try:
        return np.asarray(recording)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"cannot read a recording as an array of samples: {error}") from error
