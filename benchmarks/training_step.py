"""Stage-1 training step with cached teacher targets: forward, backward and optimizer step of
`MT2KDForDistillation`, its peak memory, and its model FLOPs utilisation.

What one step is: the three distillation losses on a batch of 10 s utterances whose teacher targets are read from
the cache (stored float16, used float32: Whisper frames stacked to 25 Hz, tagging probabilities, speaker
embeddings), `loss.backward()`, ScaledAdam (the paper's optimizer) and `zero_grad`. Data loading, augmentation and
the model average are left out. The scheduled regularisers are at their values after warm-up (`batch_count`
30000). On CUDA the step runs under bf16 autocast with float32 weights (Accelerate's `mixed_precision: bf16`).

Model FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` on one forward + backward (matmuls,
convolutions, attention; element-wise work is not counted, as usual for MFU):

    MFU = FLOPs per step / step time / the accelerator's dense bf16 peak

Each configuration runs in a fresh process (`python benchmarks/training_step.py ...` prints one JSON line), so its
peak memory is its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.memory import MIB, peak_memory
from benchmarks.timing import synchronize

BATCH_COUNT_AFTER_WARMUP = 30000.0
FRAMES_PER_SECOND = 100  # fbank

# Dense bf16 peak (no sparsity) in FLOP/s, from NVIDIA's data sheets, matched against the device name in order.
BF16_PEAK_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (the "H100 80GB HBM3")
    ("H200", 989e12),
    ("A100", 312e12),
)


def bf16_peak_flops(device_name: str) -> float | None:
    for name, flops in BF16_PEAK_FLOPS:
        if name in device_name:
            return flops
    return None


def make_batch(config, batch_size: int, duration_s: float, device: torch.device) -> dict[str, torch.Tensor]:
    """Student features and cached teacher targets of the shapes stage 1 reads (random values)."""
    generator = torch.Generator().manual_seed(0)
    num_frames = int(duration_s * FRAMES_PER_SECOND)
    student_frames = ((num_frames - 7) // 2 + 1) // 2
    stacked_dim = config.teacher_frames_per_frame * config.whisper_dim
    batch = {
        "input_features": torch.randn(batch_size, num_frames, config.num_mel_bins, generator=generator),
        "attention_mask": torch.ones(batch_size, num_frames, dtype=torch.long),
        # The cache stores float16; the loop hands float32 to the model.
        "whisper_targets": torch.randn(batch_size, student_frames, stacked_dim, generator=generator).half().float(),
        "tagging_targets": torch.rand(batch_size, config.num_labels, generator=generator).half().float(),
        "speaker_targets": torch.randn(batch_size, config.speaker_embedding_dim, generator=generator).half().float(),
    }
    return {name: tensor.to(device) for name, tensor in batch.items()}


def measure_training_step(
    preset: str, batch_size: int, duration_s: float, device: torch.device, warmup: int, steps: int
) -> dict:
    """Run in the worker process."""
    from configuration_mt2kd import MT2KDConfig
    from modeling_mt2kd import MT2KDForDistillation
    from training_mt2kd.recipe.optim import build_optimizer

    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(preset)
    with torch.device(device):
        model = MT2KDForDistillation(config)
    model.train()
    optimizer = build_optimizer(model, "scaled_adam", lr=0.045)
    batch = make_batch(config, batch_size, duration_s, device)
    precision = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )

    def forward_backward() -> None:
        with precision:
            loss = model(**batch, batch_count=BATCH_COUNT_AFTER_WARMUP).loss
        loss.backward()

    def step() -> None:
        forward_backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step_seconds = []
    with peak_memory(device) as peak:
        for index in range(warmup + steps):
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            if index >= warmup:
                step_seconds.append(time.perf_counter() - start)
    with FlopCounterMode(display=False) as counter:
        forward_backward()
    optimizer.zero_grad(set_to_none=True)

    step_s = statistics.median(step_seconds)
    flops = counter.get_total_flops()
    audio_s = batch_size * duration_s
    row = {
        "section": "training",
        "model": f"{preset} stage 1, cached targets",
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "device": str(device),
        "precision": "bf16 autocast" if device.type == "cuda" else "float32",
        "batch_size": batch_size,
        "duration_s": duration_s,
        "step_seconds": step_seconds,
        "median_step_s": step_s,
        "steps_per_s": 1 / step_s,
        "audio_s_per_s": audio_s / step_s,
        "gflop_per_step": flops / 1e9,
        "achieved_tflop_per_s": flops / step_s / 1e12,
        "memory_before_first_step_mib": peak.start_bytes / MIB,
        "peak_memory_mib": peak.peak_bytes / MIB,
        "peak_growth_mib": peak.growth_bytes / MIB,
        "peak_memory_kind": "CUDA allocated" if device.type == "cuda" else "resident set (VmHWM)",
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak_flops = bf16_peak_flops(name)
        row["accelerator"] = name
        if peak_flops is not None:
            row["bf16_peak_tflop_per_s"] = peak_flops / 1e12
            row["mfu"] = flops / step_s / peak_flops
    return row


def run_training(
    preset: str, batch_size: int, duration_s: float, device: torch.device, warmup: int, steps: int, threads: int,
    report: Callable[[str], None] = print,
) -> dict:
    """One configuration in its own process."""
    report(f"training: {preset}, batch {batch_size} x {duration_s:g} s, {device}")
    command = [
        sys.executable, str(Path(__file__).resolve()), "--preset", preset, "--batch-size", str(batch_size),
        "--duration-s", str(duration_s), "--device", str(device), "--warmup", str(warmup), "--steps", str(steps),
        "--threads", str(threads),
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"training worker failed ({' '.join(command)}):\n{finished.stderr[-4000:]}")
    row = json.loads(finished.stdout.strip().splitlines()[-1])
    text = (
        f"  {row['model']}, batch {batch_size} x {duration_s:g} s: {row['median_step_s']:.3f} s/step, "
        f"{row['audio_s_per_s']:.1f} s audio/s, {row['gflop_per_step']:.0f} GFLOP/step, "
        f"{row['achieved_tflop_per_s'] * 1000:.1f} GFLOP/s, peak {row['peak_memory_mib']:.0f} MiB"
    )
    if "mfu" in row:
        text += f", MFU {100 * row['mfu']:.1f} %"
    report(text)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description="One stage-1 training-step measurement (worker of benchmarks/run.py).")
    parser.add_argument("--preset", default="mt2kd-tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    row = measure_training_step(
        args.preset, args.batch_size, args.duration_s, torch.device(args.device), args.warmup, args.steps
    )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
