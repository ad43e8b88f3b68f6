"""Peak memory of one stage-2 training step with and without gradient checkpointing of the Zipformer layers.

What one step is: `MT2KDForMultiTask` (CTC, transducer, tagging and speaker heads) on a batch of 30 s utterances with
labels for every task, forward and `loss.backward()`, the scheduled regularisers at their values after warm-up
(`batch_count` 30000). On CUDA under bf16 autocast with float32 weights (the recipe's mixed precision). With
checkpointing (`model.activation_checkpointing_enable()`, transformers' `gradient_checkpointing_enable()`), each
layer keeps only its input and recomputes its activations in the backward pass.

    python benchmarks/gradient_checkpointing.py                    # paper-size model, 1 x 30 s, CUDA if present
    python benchmarks/gradient_checkpointing.py --device cuda --batch-size 8 \
        --output benchmarks/results/gradient_checkpointing_cuda_66m.json

The saving is in the Zipformer layers' activations, which grow with the model: on `mt2kd-tiny` the front end's
128-channel convolutions at 100 Hz dominate the peak and checkpointing the 6 small layers saves nothing.

Each setting runs in a fresh process, so that its peak memory is its own: on CUDA the peak bytes allocated by
PyTorch, on CPU the peak resident set; both minus the memory just before the step (the model and the batch already
in place; no optimizer). One warm-up step runs first (allocator caches, lazy initialisation). The step's loss is
printed for both settings: they must agree (checkpointing replays the regularisers' random numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import describe_machine
from benchmarks.memory import MIB, peak_memory
from benchmarks.timing import synchronize

BATCH_COUNT_AFTER_WARMUP = 30000.0
FRAMES_PER_SECOND = 100  # fbank
TOKENS_PER_SECOND = 3  # BPE pieces per second of speech, about LibriSpeech's rate with 500 pieces
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "gradient_checkpointing.json"


def make_batch(config, batch_size: int, duration_s: float, device: torch.device) -> dict[str, torch.Tensor]:
    """Features and labels of every stage-2 task, of the shapes the collator gives (random values)."""
    generator = torch.Generator().manual_seed(0)
    num_frames = int(duration_s * FRAMES_PER_SECOND)
    num_tokens = max(1, int(duration_s * TOKENS_PER_SECOND))
    batch = {
        "input_features": torch.randn(batch_size, num_frames, config.num_mel_bins, generator=generator),
        "attention_mask": torch.ones(batch_size, num_frames, dtype=torch.long),
        "labels": torch.randint(1, config.vocab_size, (batch_size, num_tokens), generator=generator),
        "tagging_labels": (torch.rand(batch_size, config.num_labels, generator=generator) > 0.98).float(),
        "speaker_labels": torch.randint(0, config.num_speakers, (batch_size,), generator=generator),
    }
    return {name: tensor.to(device) for name, tensor in batch.items()}


def measure_step(preset: str, batch_size: int, duration_s: float, device: torch.device, checkpointing: bool) -> dict:
    """Run in the worker process: one warm-up step, then the measured step."""
    import random

    from configuration_mt2kd import MT2KDConfig
    from modeling_mt2kd import MT2KDForMultiTask

    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(preset, num_speakers=max(2, batch_size))
    with torch.device(device):
        model = MT2KDForMultiTask(config)
    if checkpointing:
        model.activation_checkpointing_enable()
    model.train()
    batch = make_batch(config, batch_size, duration_s, device)
    precision = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step() -> float:
        with precision:
            loss = model(**batch, batch_count=BATCH_COUNT_AFTER_WARMUP).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        return loss.item()

    step()
    torch.manual_seed(1)
    random.seed(1)
    with peak_memory(device) as peak:
        synchronize(device)
        start = time.perf_counter()
        loss = step()
        synchronize(device)
        step_s = time.perf_counter() - start
    return {
        "section": "gradient checkpointing",
        "model": f"{preset} MT2KDForMultiTask (CTC, transducer, tagging, speaker)",
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "zipformer_layers": config.num_hidden_layers,
        "device": str(device),
        "precision": "bf16 autocast" if device.type == "cuda" else "float32",
        "batch_size": batch_size,
        "duration_s": duration_s,
        "gradient_checkpointing": checkpointing,
        "loss": loss,
        "step_s": step_s,
        "memory_before_step_mib": peak.start_bytes / MIB,
        "peak_memory_mib": peak.peak_bytes / MIB,
        "peak_growth_mib": peak.growth_bytes / MIB,
        "peak_memory_kind": "CUDA allocated" if device.type == "cuda" else "resident set (VmHWM)",
    }


def run_setting(args: argparse.Namespace, checkpointing: bool) -> dict:
    """One setting in its own process."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", "--preset", args.preset,
        "--batch-size", str(args.batch_size), "--duration-s", str(args.duration_s), "--device", args.device,
        "--threads", str(args.threads),
    ] + (["--checkpointing"] if checkpointing else [])
    # glibc raises its mmap threshold after large frees and then keeps freed blocks in the heap, so the resident set
    # would measure its caching, not the live tensors; a fixed threshold returns every large block when it is freed.
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}
    finished = subprocess.run(command, capture_output=True, text=True, env=environment)
    if finished.returncode != 0:
        raise RuntimeError(f"worker failed ({' '.join(command)}):\n{finished.stderr[-4000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """Markdown table of the two settings and the saving."""
    lines = [
        "| gradient checkpointing | peak growth (MiB) | peak (MiB) | step (s) | loss |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {'on' if row['gradient_checkpointing'] else 'off'} | {row['peak_growth_mib']:.0f} | "
            f"{row['peak_memory_mib']:.0f} | {row['step_s']:.2f} | {row['loss']:.4f} |"
        )
    off, on = rows
    saving = 1 - on["peak_growth_mib"] / off["peak_growth_mib"]
    lines.append(f"\nPeak growth with checkpointing: {100 * saving:.0f} % lower ({off['peak_memory_kind']}).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mt2kd-66m")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        row = measure_step(args.preset, args.batch_size, args.duration_s, torch.device(args.device), args.checkpointing)
        print(json.dumps(row))
        return

    print(f"{args.preset}, batch {args.batch_size} x {args.duration_s:g} s, {args.device}")
    rows = [run_setting(args, checkpointing=False), run_setting(args, checkpointing=True)]
    print(table(rows))
    result = {"machine": describe_machine(torch.device(args.device)), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
