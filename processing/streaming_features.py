"""Fbank features computed as audio arrives, equal to the features of the whole recording.

`StreamingFeatureExtractor` takes audio in pieces of any length, at any (fixed) sample rate, and
returns each fbank frame as soon as the samples it reads have arrived. Resampling runs the same
windowed-sinc filter as `audio_io.resample` block by block, and the frames come from
`MT2KDFeatureExtractor`'s own fbank (Kaldi framing, `snip_edges=False`: the first and last frames
mirror the signal at its ends, so they wait for the start / the end of the stream).
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
import torchaudio.functional.functional as torchaudio_functional

from .audio_io import _bounded_rate_ratio, downmix_to_mono, pcm_to_float
from .feature_extraction_mt2kd import MT2KDFeatureExtractor

__all__ = ["StreamingFeatureExtractor", "StreamingResampler"]


class StreamingResampler:
    """`audio_io.resample` one piece at a time: the concatenated output equals resampling the whole signal.

    torchaudio's polyphase filter maps each block of `orig` input samples (plus `width` samples of context on
    each side, zeros before the start and after the end) to `target` output samples; a block is computed once
    its input has arrived.
    """

    def __init__(self, orig_sample_rate: int, target_sample_rate: int):
        self.orig, self.target = _bounded_rate_ratio(int(orig_sample_rate), int(target_sample_rate))
        self.kernel, self.width = torchaudio_functional._get_sinc_resample_kernel(
            self.orig, self.target, 1, dtype=torch.float32
        )
        self.kernel_length = self.kernel.shape[-1]
        # The zero-padded input not yet fully used: it starts at padded index `self.next_block * orig`.
        self.pending = np.zeros(self.width, dtype=np.float32)
        self.next_block = 0
        self.samples_in = 0

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """Resampled output that `samples` (the next input samples, float32) make computable."""
        self.samples_in += len(samples)
        self.pending = np.concatenate([self.pending, samples])
        return self._blocks()

    def finish(self) -> np.ndarray:
        """The rest of the output, once the input has ended."""
        self.pending = np.concatenate([self.pending, np.zeros(self.width + self.orig, dtype=np.float32)])
        output = self._blocks()
        total = -(-self.target * self.samples_in // self.orig)  # ceil, as torchaudio trims
        produced_before = self.next_block * self.target - len(output)
        return output[: max(total - produced_before, 0)]

    def _blocks(self) -> np.ndarray:
        if len(self.pending) < self.kernel_length:
            return np.zeros(0, dtype=np.float32)
        num_blocks = (len(self.pending) - self.kernel_length) // self.orig + 1
        if num_blocks <= 0:
            return np.zeros(0, dtype=np.float32)
        used = (num_blocks - 1) * self.orig + self.kernel_length
        window = torch.from_numpy(np.ascontiguousarray(self.pending[:used]))[None, None]
        output = torch.nn.functional.conv1d(window, self.kernel, stride=self.orig)  # (1, target, blocks)
        self.pending = self.pending[num_blocks * self.orig :]
        self.next_block += num_blocks
        return output.transpose(1, 2).reshape(-1).numpy()


class StreamingFeatureExtractor:
    """Incremental fbank for one stream (see the module docstring).

    Args:
        feature_extractor: whose fbank settings to use (default `MT2KDFeatureExtractor()`).
        sampling_rate: rate of the incoming audio in Hz (default the extractor's, 16000). It may not change
            within a stream.
    """

    def __init__(self, feature_extractor: MT2KDFeatureExtractor | None = None, sampling_rate: int | None = None):
        self.feature_extractor = feature_extractor or MT2KDFeatureExtractor()
        self.sampling_rate = sampling_rate
        self.resampler: StreamingResampler | None = None
        hop = self.feature_extractor.hop_length
        # Frame t reads samples [t * hop - offset, t * hop - offset + win) (Kaldi's snip_edges=False framing).
        self.offset = self.feature_extractor.win_length // 2 - hop // 2
        self.samples = np.zeros(0, dtype=np.float32)  # at the features' rate, from global sample `buffer_start`
        self.buffer_start = 0
        self.total_samples = 0
        self.frames_done = 0
        self.finished = False

    def accept_waveform(self, audio, sampling_rate: int | None = None) -> np.ndarray:
        """The next piece of audio (1-D samples, or 2-D multi-channel as the feature extractor accepts);
        returns the new fbank frames it completes, (frames, feature_size) float32 (possibly none)."""
        if self.finished:
            raise RuntimeError("the stream has ended (finish() was called); start a new StreamingFeatureExtractor")
        sampling_rate = self._check_rate(sampling_rate)
        waveform = self._to_waveform(audio)
        if sampling_rate != self.feature_extractor.sampling_rate:
            if self.resampler is None:
                self.resampler = StreamingResampler(sampling_rate, self.feature_extractor.sampling_rate)
            waveform = self.resampler.accept(waveform)
        self._append(waveform)
        return self._frames(final=False)

    def finish(self) -> np.ndarray:
        """The last frames (those mirroring the end of the signal); the stream then takes no more audio."""
        if self.finished:
            raise RuntimeError("finish() was already called for this stream")
        self.finished = True
        if self.resampler is not None:
            self._append(self.resampler.finish())
        if self.total_samples == 0:
            raise ValueError("the stream had no audio; pass at least one non-empty piece before finish()")
        return self._frames(final=True)

    def _check_rate(self, sampling_rate: int | None) -> int:
        if sampling_rate is None:
            sampling_rate = self.sampling_rate or self.feature_extractor.sampling_rate
        if not isinstance(sampling_rate, Real) or isinstance(sampling_rate, bool) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive number of Hz, e.g. 16000; got {sampling_rate!r}")
        if self.sampling_rate is None:
            self.sampling_rate = int(sampling_rate)
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"the sample rate changed mid-stream from {self.sampling_rate} Hz to {sampling_rate} Hz; a stream has "
                "one rate: resample the new audio to the stream's rate or start a new stream"
            )
        return int(sampling_rate)

    def _to_waveform(self, audio) -> np.ndarray:
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().float().numpy()
        audio = np.asarray(audio)
        if audio.size == 0:
            raise ValueError(
                f"empty audio chunk (shape {tuple(audio.shape)}); pass at least one sample per call, or call "
                "finish() at the end of the stream"
            )
        if not np.issubdtype(audio.dtype, np.number) or np.issubdtype(audio.dtype, np.complexfloating):
            raise ValueError(f"audio samples must be real numbers; got dtype {audio.dtype}")
        waveform = downmix_to_mono(pcm_to_float(audio))
        if not np.isfinite(waveform).all():
            raise ValueError("the audio chunk contains NaN or infinite samples; replace them before streaming")
        return waveform

    def _append(self, waveform: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, waveform.astype(np.float32, copy=False)])
        self.total_samples += len(waveform)

    def _frames(self, final: bool) -> np.ndarray:
        extractor = self.feature_extractor
        hop, win = extractor.hop_length, extractor.win_length
        if final:
            end_frame = extractor.num_frames(self.total_samples)
        else:
            # Frames whose window lies inside the samples received (t * hop - offset + win <= total).
            end_frame = max((self.total_samples + self.offset - win) // hop + 1, 0)
            end_frame = min(end_frame, extractor.num_frames(self.total_samples))
        if end_frame <= self.frames_done:
            return np.zeros((0, extractor.feature_size), dtype=np.float32)
        # _fbank_block mirrors indices outside the buffer at its ends: that is right at the true start (the
        # buffer then begins at sample 0) and at the true end (final), and never needed in between.
        first_local = self.frames_done - self.buffer_start // hop
        frames = extractor._fbank_block(self.samples, first_local, end_frame - self.frames_done)
        self.frames_done = end_frame
        # Keep samples from the first one the next frame reads, rounded down to a frame boundary.
        keep_from = max((self.frames_done * hop - self.offset) // hop * hop, 0)
        if keep_from > self.buffer_start:
            self.samples = self.samples[keep_from - self.buffer_start :]
            self.buffer_start = keep_from
        return frames
