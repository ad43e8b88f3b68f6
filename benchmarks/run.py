"""Speed and memory of MT2KD against its three teachers: prints a table and writes JSON.

    python benchmarks/run.py [--device cpu|cuda] [--output results.json] [--quick] [--sections ...]

Sections (all by default):
  inference   mt2kd-66m one pass (encoder + CTC + transducer greedy + tagging + speaker embedding) against the
              full-size teachers run separately on the same audio: Whisper large-v3 encoder on 30 s windows and
              unpadded, AST-base, WavLM-base-plus-SV (random weights, nothing downloaded). CPU: fp32,
              batch 1 and 8 x 10 s. CUDA: bf16 weights, batch 1, 32 and 256 x 10 s.
  long_form   one long recording through the chunked transducer ASR pipeline: time and peak memory per length.
  training    stage-1 step with cached targets: step time, peak memory, FLOPs per step (and MFU on a GPU).
  fast_paths  transducer greedy search with the batched-matmul predictor against nn.Conv1d, and how far bf16
              moves the one pass's outputs from fp32.

The JSON is rewritten after every section, so an interrupted run keeps what it measured. Every figure
carries the machine, date, commit and load average of `machine`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.fast_paths import bf16_deviation, run_greedy_predictor_comparison
from benchmarks.inference import InferenceSetting, run_inference
from benchmarks.long_form import run_long_form
from benchmarks.machine import describe_machine, load_average
from benchmarks.training_step import run_training

SECTIONS = ("inference", "long_form", "training", "fast_paths")
ALL_TEACHERS = ("whisper-30s", "whisper-unpadded", "ast", "wavlm-sv")


def cpu_plan(quick: bool) -> dict:
    """CPU, 2 threads, fp32. The full-size teachers take tens of seconds per call here, so they get no warm-up
    (their first call's one-time costs are small against that; the rounds show it) and few rounds, and the
    30 s-window Whisper (8 windows, minutes per call) is left out at batch 8."""
    if quick:
        inference = [InferenceSetting(1, student_warmup=2, student_rounds=3, teachers=ALL_TEACHERS,
                                      teacher_warmup=0, teacher_rounds=1, bf16_autocast=True)]
        return dict(inference=inference, long_form=("mt2kd-tiny", [1.0, 2.0], 30.0),
                    training=[("mt2kd-tiny", 2, 1, 1)], fast_paths=("mt2kd-66m", [1], 3))
    inference = [
        InferenceSetting(1, student_warmup=3, student_rounds=5, teachers=ALL_TEACHERS,
                         teacher_warmup=0, teacher_rounds=2, bf16_autocast=True),
        InferenceSetting(8, student_warmup=2, student_rounds=3, teachers=("whisper-unpadded", "ast", "wavlm-sv"),
                         teacher_warmup=0, teacher_rounds=1, bf16_autocast=True),
    ]
    return dict(
        inference=inference,
        # 1 hour of audio takes ~20 min here (RTF ~0.3 with the machine shared), so three shorter lengths.
        long_form=("mt2kd-tiny", [5.0, 10.0, 20.0], 30.0),
        # (preset, batch size, warm-up steps, timed steps) at 10 s per utterance.
        training=[("mt2kd-tiny", 4, 1, 3), ("mt2kd-66m", 2, 1, 2)],
        fast_paths=("mt2kd-66m", [1, 8], 5),
    )


def cuda_plan(quick: bool) -> dict:
    """CUDA, bf16. Batch 32 compares against the teachers; batch 1 is the latency target; batch 256 the
    throughput and memory target."""
    rounds = 5 if quick else 20
    inference = [
        InferenceSetting(1, student_warmup=5, student_rounds=rounds),
        InferenceSetting(32, student_warmup=3, student_rounds=rounds, teachers=ALL_TEACHERS, teacher_warmup=2,
                         teacher_rounds=3 if quick else 5),
        InferenceSetting(256, student_warmup=2, student_rounds=3 if quick else 5),
    ]
    return dict(
        inference=inference,
        long_form=("mt2kd-66m", [10.0], 30.0),  # 10 min did not finish in 40 s on an H200 (per-frame greedy search)
        training=[("mt2kd-66m", 64, 3, 5 if quick else 50)],
        fast_paths=("mt2kd-66m", [1, 32], 5 if quick else 10),
    )


def format_table(rows: list[dict]) -> str:
    header = ("section", "setting", "model", "s/call", "audio s/s", "RTF", "speedup", "GFLOP", "peak MiB")
    lines = [header]
    for row in rows:
        seconds = row.get("median_s", row.get("median_step_s", row.get("seconds")))
        setting = row.get("setting") or (
            f"{row['audio_minutes']:g} min" if "audio_minutes" in row else f"batch {row.get('batch_size')} x 10 s"
        )
        speedup = row.get("one_pass_speedup", row.get("speedup"))
        lines.append((
            row["section"],
            setting,
            row["model"],
            f"{seconds:.4g}" if isinstance(seconds, (int, float)) else "",
            f"{row['audio_s_per_s']:.4g}" if "audio_s_per_s" in row else "",
            f"{row['real_time_factor']:.4f}" if "real_time_factor" in row else "",
            f"{speedup:.3g}x" if speedup is not None else "",
            f"{row.get('gflop_per_call', row.get('gflop_per_step')):.4g}" if ("gflop_per_call" in row or "gflop_per_step" in row) else "",
            f"{row['peak_memory_mib']:.0f}" if "peak_memory_mib" in row else "",
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--output", default="results.json", help="JSON file, rewritten after every section")
    parser.add_argument("--quick", action="store_true", help="fewer settings and rounds (a smoke run)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads on CPU (default 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="only these inference batch sizes of the plan")
    parser.add_argument("--no-teachers", action="store_true", help="inference: time the student only")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA GPU; none is visible (use --device cpu)")
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    plan = cuda_plan(args.quick) if device.type == "cuda" else cpu_plan(args.quick)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if args.batch_sizes:
        plan["inference"] = [setting for setting in plan["inference"] if setting.batch_size in args.batch_sizes]
        if not plan["inference"]:
            parser.error(f"--batch-sizes {args.batch_sizes} matches none of this device's inference settings")
    if args.no_teachers:
        plan["inference"] = [dataclasses.replace(setting, teachers=()) for setting in plan["inference"]]

    def report(text: str) -> None:
        print(text, flush=True)

    results = {"machine": describe_machine(device), "arguments": vars(args), "load_average_after_section": {}, "rows": []}
    output = Path(args.output)

    def save(section: str) -> None:
        results["load_average_after_section"][section] = load_average()
        output.write_text(json.dumps(results, indent=2))

    report(json.dumps(results["machine"]))
    if "inference" in args.sections:
        results["rows"] += run_inference(device, dtype, "mt2kd-66m", plan["inference"], report)
        save("inference")
    if "fast_paths" in args.sections:
        preset, batch_sizes, rounds = plan["fast_paths"]
        results["rows"] += run_greedy_predictor_comparison(preset, batch_sizes, 10.0, device, dtype, rounds, report)
        row = bf16_deviation(preset, 2, 10.0, device)
        report(f"  {row['model']}: {json.dumps({k: v for k, v in row.items() if k not in ('section', 'model')})}")
        results["rows"].append(row)
        save("fast_paths")
    if "long_form" in args.sections:
        preset, minutes, chunk_length_s = plan["long_form"]
        # float32 weights on every device: the pipeline hands float32 features to the model.
        results["rows"] += run_long_form(preset, minutes, chunk_length_s, device, torch.float32, args.threads, report)
        save("long_form")
    if "training" in args.sections:
        for preset, batch_size, warmup, steps in plan["training"]:
            results["rows"].append(run_training(preset, batch_size, 10.0, device, warmup, steps, args.threads, report))
            save("training")

    report("")
    report(format_table([row for row in results["rows"] if "model" in row]))
    report(f"\nwritten to {output}")


if __name__ == "__main__":
    main()
