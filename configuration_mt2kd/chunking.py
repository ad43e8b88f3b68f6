"""Rules for the chunk sizes and left contexts of a causal (streaming) encoder.

Units are 50 Hz frames, the front end's output rate, as in the authors' recipe: a chunk of
`chunk_size` frames is `2 * chunk_size` fbank frames in and `chunk_size / 2` encoder frames out.
-1 means "no chunking" (for a chunk size) or "unlimited" (for a left context).
"""

from __future__ import annotations

import math


def chunk_multiple(downsampling_factor: tuple[int, ...]) -> int:
    """Chunk sizes and streaming left contexts must be multiples of every stack's downsampling factor."""
    return math.lcm(*downsampling_factor)


def left_context_chunks(chunk_size: int, left_context_frames: int) -> int:
    """Whole chunks of left context the full (simulated-streaming) forward attends to: the left
    context rounded down to whole chunks, at least one; -1 (unlimited) when either value is -1."""
    if chunk_size < 0 or left_context_frames < 0:
        return -1
    return max(left_context_frames // chunk_size, 1)


def chunking_problems(config) -> list[str]:
    """What is wrong with a causal config's chunk settings (empty when nothing is)."""
    multiple = chunk_multiple(config.downsampling_factor)
    problems = []

    def check_chunk(name: str, value: int) -> None:
        if value != -1 and (value <= 0 or value % multiple):
            problems.append(
                f"{name}={value} must be -1 (no chunking) or a positive multiple of {multiple} (the least common "
                f"multiple of downsampling_factor={config.downsampling_factor})"
            )

    check_chunk("chunk_size", config.chunk_size)
    for value in config.training_chunk_sizes:
        check_chunk("training_chunk_sizes entry", value)
    lcf = config.left_context_frames
    if lcf != -1 and (lcf <= 0 or lcf % multiple):
        problems.append(
            f"left_context_frames={lcf} must be -1 (unlimited) or a positive multiple of {multiple} (each stack "
            f"caches left_context_frames / downsampling_factor frames)"
        )
    for value in config.training_left_context_frames:
        if value != -1 and value <= 0:
            problems.append(f"training_left_context_frames entry {value} must be -1 (unlimited) or positive")
    if not config.training_chunk_sizes or not config.training_left_context_frames:
        problems.append("training_chunk_sizes and training_left_context_frames need at least one value each")

    # The chunk-causal convolution looks kernel // 2 frames back; that context must lie inside what
    # attention may see (the authors' assertion, checked here for every pair a model can be run with).
    pairs = {(config.chunk_size, config.left_context_frames)}
    pairs |= {(c, l) for c in config.training_chunk_sizes for l in config.training_left_context_frames}
    for chunk_size, left_frames in sorted(pairs):
        chunks = left_context_chunks(chunk_size, left_frames)
        if chunks < 0:
            continue
        for stack, (kernel, factor) in enumerate(zip(config.cnn_module_kernel, config.downsampling_factor)):
            needed = (kernel // 2) * factor
            if chunk_size * chunks < needed:
                problems.append(
                    f"chunk_size={chunk_size} with left_context_frames={left_frames} gives {chunk_size * chunks} "
                    f"frames of left context, fewer than stack {stack}'s convolution needs ({needed} = "
                    f"cnn_module_kernel // 2 * downsampling_factor); use a larger left context"
                )
    return problems
