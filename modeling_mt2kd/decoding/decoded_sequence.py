"""What every decoder returns per utterance, and the checks on what every decoder is given."""

from dataclasses import dataclass, field

import torch


@dataclass
class DecodedSequence:
    """One utterance's decoding result.

    Attributes:
        tokens: emitted token ids, without blanks or context padding.
        frames: for each token, the encoder frame (25 Hz for MT2KD) at which it was emitted.
        score: log-probability of the returned path (natural log).
    """

    tokens: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    score: float = 0.0


def check_frame_lengths(lengths: torch.Tensor, batch_size: int, num_frames: int) -> None:
    """Raise a ValueError unless `lengths` is a (batch,) tensor of valid frame counts in [0, num_frames]."""
    if lengths.shape != (batch_size,):
        raise ValueError(f"expected lengths of shape ({batch_size},), one per utterance; got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"expected integer frame lengths; got dtype {lengths.dtype}: pass lengths.long()")
    if bool((lengths < 0).any()) or bool((lengths > num_frames).any()):
        raise ValueError(
            f"expected frame lengths in [0, {num_frames}] (the padded number of frames); got {lengths.tolist()}"
        )
