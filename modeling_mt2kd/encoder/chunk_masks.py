"""Chunked attention for the causal encoder's full (simulated-streaming) forward."""

from __future__ import annotations

import random

import torch

from configuration_mt2kd.chunking import left_context_chunks


def choose_chunking(config, training: bool) -> tuple[int, int]:
    """(chunk_size, left_context_chunks) in 50 Hz frames / whole chunks for one forward pass.

    A non-causal config gives (-1, -1): no chunking. In training a causal config samples one chunk
    size and one left context per call (per batch) from its training lists, as the authors' recipe
    does; in eval it uses `config.chunk_size` and `config.left_context_frames`.
    """
    if not config.causal:
        return -1, -1
    if training:
        chunk_size = random.choice(config.training_chunk_sizes)
        left_frames = random.choice(config.training_left_context_frames)
    else:
        chunk_size, left_frames = config.chunk_size, config.left_context_frames
    return chunk_size, left_context_chunks(chunk_size, left_frames)


def chunk_attention_mask(
    num_frames: int, chunk_size: int, left_context_chunks: int, device: torch.device
) -> torch.Tensor | None:
    """(frames, frames) bool, True where query frame i may NOT attend to key frame j: keys in a later
    chunk, or more than `left_context_chunks` chunks back (-1: no limit). None when chunk_size <= 0.
    Chunks start at frame 0; a stack at 1/ds of the rate uses `mask[::ds, ::ds]`."""
    if chunk_size <= 0:
        return None
    chunk_index = torch.arange(num_frames, device=device) // chunk_size
    query_chunk, key_chunk = chunk_index.unsqueeze(1), chunk_index.unsqueeze(0)
    masked = key_chunk > query_chunk
    if left_context_chunks >= 0:
        masked = masked | (key_chunk < query_chunk - left_context_chunks)
    return masked
