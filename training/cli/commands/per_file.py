"""Run a pipeline over many audio files in batches, with a progress bar and one result or error per file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from processing_mt2kd import load_audio

__all__ = ["FILE_ERRORS", "SAMPLING_RATE", "run_per_file"]

SAMPLING_RATE = 16000
# What one bad file may raise (missing, undecodable, too short, ...); anything else is a bug and stops the command.
FILE_ERRORS = (OSError, ValueError, RuntimeError)

# Takes the 16 kHz mono waveforms of a batch, returns one JSON-ready result dict per waveform.
BatchInference = Callable[[list[np.ndarray]], list[dict[str, Any]]]


def run_per_file(
    paths: Sequence[str], infer: BatchInference, batch_size: int, description: str
) -> list[dict[str, Any]]:
    """`{"path": path, **result}` or `{"path": path, "error": message}` for every path, in order.

    Files are decoded (soundfile, resampled to 16 kHz, down-mixed) `batch_size` at a time and passed to `infer`
    together; when a batch fails, its files are retried one by one so that the error lands on the file that caused it.
    Memory holds one batch of audio at a time.
    """
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1; got {batch_size}")
    results = []
    with tqdm(total=len(paths), desc=description, unit="file", disable=None) as progress:
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            outcomes: dict[str, dict[str, Any]] = {}
            waveforms: dict[str, np.ndarray] = {}
            for path in batch:
                try:
                    waveforms[path] = load_audio(path, target_sample_rate=SAMPLING_RATE)[0]
                except FILE_ERRORS as error:
                    outcomes[path] = {"error": _message(error)}
            outcomes.update(_infer_isolating_failures(infer, waveforms))
            results += [{"path": path, **outcomes[path]} for path in batch]
            progress.update(len(batch))
    return results


def _infer_isolating_failures(infer: BatchInference, waveforms: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    if not waveforms:
        return {}
    try:
        return dict(zip(waveforms, infer(list(waveforms.values())), strict=True))
    except FILE_ERRORS as error:
        if len(waveforms) == 1:
            return {path: {"error": _message(error)} for path in waveforms}
    outcomes = {}
    for path, waveform in waveforms.items():
        try:
            outcomes[path] = infer([waveform])[0]
        except FILE_ERRORS as error:
            outcomes[path] = {"error": _message(error)}
    return outcomes


def _message(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
