"""Peak memory of tagging, speaker embedding and the multi-task call on one long recording, 1 to 60 minutes.

The three pipelines cut recordings longer than `window_length_s` (default 30 s) into overlapping windows and pool
the windows' outputs (`processing_mt2kd.pipelines.windowing`), so their peak memory must not grow with the
duration beyond the recording itself (float32, 3.7 MiB per minute). `--whole` puts the recording through the
encoder in one pass instead (`window_length_s` = its duration), the behaviour before windowing, for comparison;
expect it to grow with the square of the duration (and to run out of memory on long inputs).

    python benchmarks/long_input_memory.py                       # tiny preset, 1 5 10 30 60 min, 3 pipelines
    python benchmarks/long_input_memory.py --preset mt2kd-66m --minutes 1 10 60 --tasks mt2kd-speaker-verification
    python benchmarks/long_input_memory.py --output benchmarks/results/long_input_memory.json

Each (pipeline, length) runs in a fresh process, so that its peak resident memory is not the left-over of another
one. Memory is the peak during the call minus the resident size just before it, the recording already loaded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.memory import MIB, peak_memory
from benchmarks.models import SAMPLE_RATE, test_audio

TASKS = ("mt2kd-audio-classification", "mt2kd-speaker-verification", "mt2kd-multitask")
DEFAULT_MINUTES = (1.0, 5.0, 10.0, 30.0, 60.0)
SENTENCES = ["HELLO WORLD", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG", "ZERO ONE TWO THREE FOUR FIVE"]


def save_model_folder(preset: str, folder: Path) -> Path:
    """A random multi-task model of `preset` (every head), its feature extractor and a small BPE tokenizer."""
    from configuration_mt2kd import MT2KDConfig
    from modeling_mt2kd import MT2KDForMultiTask
    from processing_mt2kd import MT2KDFeatureExtractor, train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(SENTENCES, folder / "bpe", vocab_size=30)
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(preset, vocab_size=len(tokenizer))
    MT2KDForMultiTask(config).eval().save_pretrained(folder)
    MT2KDFeatureExtractor().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure_one(preset: str, task: str, minutes: float, whole: bool, device: torch.device) -> dict:
    """Run in the worker process: warm up on two windows' worth of audio, then measure the long recording."""
    from transformers import pipeline
    from transformers.utils import logging

    import processing_mt2kd  # noqa: F401 - registers the MT2KD pipelines
    from processing_mt2kd.pipelines import DEFAULT_WINDOW_LENGTH_S

    logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as folder:
        pipe = pipeline(task, model=str(save_model_folder(preset, Path(folder))), device=device)
        pipe(test_audio(1, 2 * DEFAULT_WINDOW_LENGTH_S, seed=1)[0])
        waveform = test_audio(1, minutes * 60.0)[0]
        options = {"window_length_s": minutes * 60.0 + 1.0} if whole else {}
        with peak_memory(device) as peak:
            start = time.perf_counter()
            pipe(waveform, **options)
            seconds = time.perf_counter() - start
    return {
        "section": "long_input_memory",
        "model": f"{preset} {task} pipeline, " + ("whole recording in one pass" if whole else "windowed (defaults)"),
        "device": str(device),
        "audio_minutes": minutes,
        "seconds": seconds,
        "recording_mib": waveform.nbytes / MIB,
        "memory_before_call_mib": peak.start_bytes / MIB,
        "peak_memory_mib": peak.peak_bytes / MIB,
        "peak_growth_during_call_mib": peak.growth_bytes / MIB,
        "peak_memory_kind": "CUDA allocated" if device.type == "cuda" else "resident set (VmHWM)",
    }


def run_all(preset: str, tasks: list[str], minutes: list[float], whole: bool, device: str, threads: int) -> list[dict]:
    """Each (task, length) in its own process, shortest first; a worker killed for memory is reported as such."""
    rows = []
    for task in tasks:
        for length in sorted(minutes):
            command = [
                sys.executable, str(Path(__file__).resolve()), "--worker", "--preset", preset, "--tasks", task,
                "--minutes", str(length), "--device", device, "--threads", str(threads),
            ] + (["--whole"] if whole else [])
            finished = subprocess.run(command, capture_output=True, text=True)
            if finished.returncode != 0:
                row = {"section": "long_input_memory", "model": f"{preset} {task}", "audio_minutes": length,
                       "failed": f"exit {finished.returncode}: {finished.stderr.strip()[-300:]}"}
                print(f"{task} {length:g} min: failed ({row['failed'][:120]})", file=sys.stderr)
            else:
                row = json.loads(finished.stdout.strip().splitlines()[-1])
                print(f"{task} {length:g} min: {row['seconds']:.1f} s, peak growth "
                      f"{row['peak_growth_during_call_mib']:.0f} MiB (recording {row['recording_mib']:.0f} MiB)",
                      file=sys.stderr)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mt2kd-tiny")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--minutes", type=float, nargs="+", default=list(DEFAULT_MINUTES))
    parser.add_argument("--whole", action="store_true", help="no windows: the whole recording in one encoder pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", help="also write the rows as JSON to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(measure_one(args.preset, args.tasks[0], args.minutes[0], args.whole, torch.device(args.device))))
        return
    rows = run_all(args.preset, args.tasks, args.minutes, args.whole, args.device, args.threads)
    text = json.dumps(rows, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
