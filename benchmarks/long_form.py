"""Long-form transcription: time and peak memory of one long recording through the chunked transducer ASR
pipeline (`pipeline("mt2kd-transducer-asr", chunk_length_s=...)`).

Each length runs in a fresh process (`python benchmarks/long_form.py --minutes N ...` prints one JSON line), so
that its peak resident memory is not the left-over of another length. Memory is reported as the peak during the
call minus the resident size just before it, when the recording is already in memory; the recording itself
(float32, 3.7 MiB per minute) is given beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.memory import MIB, peak_memory
from benchmarks.models import SAMPLE_RATE, test_audio

SENTENCES = [
    "HELLO WORLD",
    "AND SO MY FELLOW AMERICANS ASK NOT WHAT YOUR COUNTRY CAN DO FOR YOU",
    "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
]


def build_pipeline(preset: str, device: torch.device, dtype: torch.dtype, folder: Path):
    """A random `MT2KDForRNNT` of the preset with a small BPE tokenizer trained on a few sentences."""
    from transformers import pipeline
    from transformers.utils import logging

    from configuration_mt2kd import MT2KDConfig
    from modeling_mt2kd import MT2KDForRNNT
    from processing_mt2kd import MT2KDFeatureExtractor, train_bpe_tokenizer

    logging.set_verbosity_error()
    tokenizer = train_bpe_tokenizer(SENTENCES, folder / "bpe", vocab_size=40)
    torch.manual_seed(0)
    with torch.device(device):
        model = MT2KDForRNNT(MT2KDConfig.from_preset(preset, vocab_size=len(tokenizer)))
    model = model.eval().to(dtype)
    return pipeline(
        "mt2kd-transducer-asr", model=model, feature_extractor=MT2KDFeatureExtractor(), tokenizer=tokenizer,
        device=device,
    )


def measure_one_length(preset: str, minutes: float, chunk_length_s: float, device: torch.device, dtype: torch.dtype) -> dict:
    """Run in the worker process: warm up on one chunk's worth of audio, then time the long recording."""
    with tempfile.TemporaryDirectory() as folder:
        asr = build_pipeline(preset, device, dtype, Path(folder))
        asr({"raw": test_audio(1, 2 * chunk_length_s, seed=1)[0], "sampling_rate": SAMPLE_RATE}, chunk_length_s=chunk_length_s)
        waveform = test_audio(1, minutes * 60.0)[0]
        with peak_memory(device) as peak:
            start = time.perf_counter()
            result = asr({"raw": waveform, "sampling_rate": SAMPLE_RATE}, chunk_length_s=chunk_length_s)
            seconds = time.perf_counter() - start
    audio_s = minutes * 60.0
    return {
        "section": "long_form",
        "model": f"{preset} transducer ASR pipeline, greedy, chunk_length_s={chunk_length_s:g}",
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "audio_minutes": minutes,
        "seconds": seconds,
        "audio_s_per_s": audio_s / seconds,
        "real_time_factor": seconds / audio_s,
        "recording_mib": waveform.nbytes / MIB,
        "memory_before_call_mib": peak.start_bytes / MIB,
        "peak_memory_mib": peak.peak_bytes / MIB,
        "peak_growth_during_call_mib": peak.growth_bytes / MIB,
        "peak_memory_kind": "CUDA allocated" if device.type == "cuda" else "resident set (VmHWM)",
        "transcript_characters": len(result["text"]),
    }


def run_long_form(
    preset: str, minutes: list[float], chunk_length_s: float, device: torch.device, dtype: torch.dtype, threads: int,
    report: Callable[[str], None] = print,
) -> list[dict]:
    """Each length in its own process, shortest first."""
    rows = []
    for length in sorted(minutes):
        report(f"long-form: {preset}, {length:g} min, chunk_length_s={chunk_length_s:g}, {device}")
        command = [
            sys.executable, str(Path(__file__).resolve()), "--preset", preset, "--minutes", str(length),
            "--chunk-length-s", str(chunk_length_s), "--device", str(device), "--dtype", str(dtype).removeprefix("torch."),
            "--threads", str(threads),
        ]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"long-form worker failed ({' '.join(command)}):\n{finished.stderr[-4000:]}")
        row = json.loads(finished.stdout.strip().splitlines()[-1])
        rows.append(row)
        report(
            f"  {length:g} min: {row['seconds']:.1f} s (RTF {row['real_time_factor']:.4f}), peak growth "
            f"{row['peak_growth_during_call_mib']:.0f} MiB over {row['memory_before_call_mib']:.0f} MiB "
            f"(recording {row['recording_mib']:.0f} MiB)"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="One long-form measurement (worker of benchmarks/run.py).")
    parser.add_argument("--preset", default="mt2kd-tiny")
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--chunk-length-s", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    row = measure_one_length(args.preset, args.minutes, args.chunk_length_s, torch.device(args.device), getattr(torch, args.dtype))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
