"""Zipformer2 encoder in plain PyTorch, batch-first."""

from ..lengths import subsampled_lengths
from .subsampling import Conv2dSubsampling
from .zipformer import EncoderResult, Zipformer2Encoder

__all__ = ["Conv2dSubsampling", "EncoderResult", "Zipformer2Encoder", "subsampled_lengths"]
