"""A real speaker teacher without extra dependencies: Resemblyzer's pretrained GE2E voice encoder.

The weights (`pretrained.pt`, a 3-layer LSTM over 40-band mel power spectra, 256-dim embeddings)
ship in the pip package `resemblyzer`; this module re-implements its small network and front end in
torch, so neither resemblyzer's own dependencies (librosa, webrtcvad) nor the package import is
needed: `pip install --no-deps resemblyzer` is enough.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torchaudio
from torch import nn

from training_mt2kd.recipe.teachers.base import Teacher, TeacherTargets

PACKAGE_NAME = "resemblyzer"
WEIGHTS_FILE = "pretrained.pt"
INSTALL_HINT = (
    "the Resemblyzer speaker teacher reads the weights file that ships in the pip package `resemblyzer`; "
    "install it without its audio dependencies (librosa, webrtcvad), which this adapter does not need: "
    "`pip install --no-deps resemblyzer`"
)

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
MEL_BANDS = 40
PARTIAL_FRAMES = 160  # 1.6 s of mel frames per partial utterance
PARTIALS_PER_S = 1.3
MIN_LAST_PARTIAL_COVERAGE = 0.75
TARGET_DBFS = -30.0


def installed_resemblyzer_weights() -> Path:
    """`pretrained.pt` of the installed `resemblyzer` package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(INSTALL_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"resemblyzer is installed but {path} is missing; reinstall it ({INSTALL_HINT})")
    return path


def resolve_weights(name_or_path: str | Path) -> Path:
    """"resemblyzer" → the installed package's weights; a folder → its `pretrained.pt`; a file → itself."""
    if str(name_or_path) == PACKAGE_NAME:
        return installed_resemblyzer_weights()
    path = Path(name_or_path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no Resemblyzer weights at {path}; pass a pretrained.pt file, a folder holding one, or "
            f"'{PACKAGE_NAME}' for the installed package's"
        )
    return path


class GE2ESpeakerEncoder(nn.Module):
    """Resemblyzer's voice encoder: LSTM over mel frames, the last layer's final state through a
    linear layer and a ReLU, L2-normalised. Parameter names match `pretrained.pt`'s `model_state`.

    Args:
        mel_bands: input mel bands (40).
        hidden_size: LSTM width (256).
        num_layers: LSTM layers (3).
        embedding_dim: output size (256).
    """

    def __init__(self, mel_bands: int = MEL_BANDS, hidden_size: int = 256, num_layers: int = 3, embedding_dim: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(mel_bands, hidden_size, num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, embedding_dim)

    def forward(self, mel_frames: torch.Tensor) -> torch.Tensor:
        """`(partials, frames, mel_bands)` equal-length mel power spectra → `(partials, embedding_dim)` unit vectors."""
        _, (hidden, _) = self.lstm(mel_frames)
        embeddings = torch.relu(self.linear(hidden[-1]))
        # eps keeps an all-zero (silent) embedding at zero instead of NaN.
        return nn.functional.normalize(embeddings, dim=-1, eps=1e-12)


class ResemblyzerMelSpectrogram(nn.Module):
    """40-band mel power spectrum, 25 ms Hann windows every 10 ms, centred with zero padding, Slaney
    mel scale and area normalisation: librosa's `melspectrogram` defaults, as Resemblyzer uses them.
    Not a log: the encoder was trained on power values."""

    def __init__(self) -> None:
        super().__init__()
        self.transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=WINDOW_SAMPLES,
            hop_length=HOP_SAMPLES,
            n_mels=MEL_BANDS,
            pad_mode="constant",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """`(samples,)` float at 16 kHz → `(1 + samples // 160, 40)`."""
        return self.transform(samples).T


def partial_starts(num_samples: int) -> list[int]:
    """First mel frame of each 1.6 s partial utterance, 1.3 partials per second, as Resemblyzer's
    `compute_partial_slices`: the last partial is kept if audio covers at least 75 % of it (or it
    is the only one)."""
    num_frames = math.ceil((num_samples + 1) / HOP_SAMPLES)
    frame_step = round(SAMPLE_RATE / PARTIALS_PER_S / HOP_SAMPLES)
    starts = list(range(0, max(1, num_frames - PARTIAL_FRAMES + frame_step + 1), frame_step))
    coverage = (num_samples - starts[-1] * HOP_SAMPLES) / (PARTIAL_FRAMES * HOP_SAMPLES)
    if coverage < MIN_LAST_PARTIAL_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def raise_quiet_audio(samples: torch.Tensor) -> torch.Tensor:
    """Amplify audio quieter than −30 dBFS (RMS) to −30 dBFS; louder audio and silence stay as they are."""
    rms = samples.pow(2).mean().sqrt()
    if rms == 0:
        return samples
    target_rms = 10 ** (TARGET_DBFS / 20)
    return samples * (target_rms / rms) if rms < target_rms else samples


class ResemblyzerTeacher(Teacher):
    """Resemblyzer utterance embeddings as speaker targets, `values` `(batch, 256)`, unit length.

    As Resemblyzer's `embed_utterance`: each utterance, quieter ones raised to −30 dBFS, is cut into
    1.6 s partials (zero-padded at the end), each partial is embedded, and the mean of the partial
    embeddings is L2-normalised. Every utterance is processed on its own samples, so batch padding
    changes nothing. Resemblyzer's `preprocess_wav` also removes long silences with webrtcvad; this
    adapter does not (short, trimmed utterances such as the demo's are unaffected).

    Args:
        encoder: a `GE2ESpeakerEncoder` with the pretrained weights.
    """

    target_key = "speaker"

    def __init__(self, encoder: GE2ESpeakerEncoder, *, name: str = PACKAGE_NAME) -> None:
        super().__init__(encoder, name)
        self.mel = ResemblyzerMelSpectrogram()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = PACKAGE_NAME, *, device: torch.device | str = "cpu"
    ) -> ResemblyzerTeacher:
        """Load from `pretrained.pt` (a file, a folder holding one, or "resemblyzer" for the installed package's)."""
        path = resolve_weights(name_or_path)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state_dict = dict(checkpoint.get("model_state", checkpoint))
        # GE2E's learnt similarity scale and offset only serve its training loss.
        state_dict.pop("similarity_weight", None)
        state_dict.pop("similarity_bias", None)
        encoder = GE2ESpeakerEncoder()
        encoder.load_state_dict(state_dict)
        return cls(encoder, name=str(name_or_path)).to(device)

    def to(self, device: torch.device | str) -> ResemblyzerTeacher:
        super().to(device)
        self.mel.to(device)
        return self

    def _partials(self, samples: torch.Tensor) -> torch.Tensor:
        """`(partials, 160, 40)` mel frames of one utterance."""
        samples = raise_quiet_audio(samples)  # before the end padding, which would lower the RMS
        starts = partial_starts(len(samples))
        padded_samples = (starts[-1] + PARTIAL_FRAMES) * HOP_SAMPLES
        if padded_samples >= len(samples):
            samples = nn.functional.pad(samples, (0, padded_samples - len(samples)))
        mel = self.mel(samples)
        return torch.stack([mel[start : start + PARTIAL_FRAMES] for start in starts])

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        partials = [self._partials(waveforms[index, :length]) for index, length in enumerate(waveform_lengths.tolist())]
        counts = [len(utterance) for utterance in partials]
        with self._model_precision():
            partial_embeddings = self.model(torch.cat(partials)).float()
        embeddings = torch.stack([chunk.mean(0) for chunk in partial_embeddings.split(counts)])
        return TeacherTargets(nn.functional.normalize(embeddings, dim=-1, eps=1e-12))
