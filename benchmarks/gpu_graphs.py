"""Eager vs torch.compile vs CUDA graphs for the one-pass forward on a GPU: time per call and peak memory.

    python benchmarks/gpu_graphs.py [--batch-sizes 1 32 256] [--duration-s 10] [--output graphs.json]

The model is `mt2kd-66m` `MT2KDForMultiTask` (encoder + CTC logits + tagging + speaker embedding; the
transducer search is left out: it is not part of the captured graph) with random weights in bf16. For each batch
size × 10 s the three candidates are timed interleaved in this process, each figure printed as soon as it is
measured:
  eager      the model as it is
  compiled   `torch.compile(model, dynamic=False)` (inductor, default mode; no max-autotune: it takes longer than
             a GPU lease on this model); its compile time is reported separately
  cudagraph  `training_mt2kd.export.cuda_graphs.CUDAGraphRunner` with one bucket per batch size (record time
             reported separately)
Peak memory is `torch.cuda.max_memory_allocated` over each candidate's calls (reset before each). The JSON is
rewritten after every row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import describe_machine
from benchmarks.models import StudentOnePass, test_audio
from benchmarks.timing import TimedCandidate, run_interleaved, synchronize


def _peak_mib(call, device: torch.device, calls: int = 2) -> float:
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(calls):
        call()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def measure(batch_size: int, duration_s: float, device: torch.device, rounds: int, report) -> list[dict]:
    from training_mt2kd.export.cuda_graphs import CUDAGraphRunner, ShapeBuckets

    one_pass = StudentOnePass("mt2kd-66m", device, torch.bfloat16)
    model, inputs = one_pass.model, one_pass.inputs(test_audio(batch_size, duration_s))
    num_frames = inputs["input_features"].shape[1]

    started = time.perf_counter()
    compiled = torch.compile(model, dynamic=False)
    with torch.inference_mode():
        compiled(**inputs)
    synchronize(device)
    compile_s = time.perf_counter() - started
    report(f"batch {batch_size}: compiled in {compile_s:.1f} s")

    started = time.perf_counter()
    runner = CUDAGraphRunner(model, ShapeBuckets(batch_sizes=(batch_size,), num_frames=(num_frames,)))
    runner(**inputs)
    synchronize(device)
    record_s = time.perf_counter() - started
    report(f"batch {batch_size}: CUDA graph recorded in {record_s:.1f} s")

    def eager():
        with torch.inference_mode():
            return model(**inputs)

    def compiled_call():
        with torch.inference_mode():
            return compiled(**inputs)

    candidates = [
        TimedCandidate("eager", eager, warmup=3, rounds=rounds),
        TimedCandidate("compiled", compiled_call, warmup=3, rounds=rounds),
        TimedCandidate("cudagraph", lambda: runner(**inputs), warmup=3, rounds=rounds),
    ]
    run_interleaved(candidates, device, report=lambda _: None)
    rows = []
    eager_s = candidates[0].median_s
    for candidate in candidates:
        row = dict(
            batch_size=batch_size, duration_s=duration_s, candidate=candidate.name, median_s=candidate.median_s,
            audio_s_per_s=batch_size * duration_s / candidate.median_s, speedup_vs_eager=eager_s / candidate.median_s,
            peak_memory_mib=_peak_mib(candidate.call, device),
            setup_s={"compiled": compile_s, "cudagraph": record_s}.get(candidate.name, 0.0),
        )
        report(
            f"batch {batch_size} x {duration_s:g} s {candidate.name}: {row['median_s'] * 1e3:.2f} ms/call, "
            f"{row['audio_s_per_s']:.0f} audio s/s, {row['speedup_vs_eager']:.2f}x eager, "
            f"peak {row['peak_memory_mib']:.0f} MiB"
        )
        rows.append(row)
    del compiled, runner
    torch._dynamo.reset()
    torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--output", default="gpu_graphs.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("this benchmark needs a CUDA GPU")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    results = {"machine": describe_machine(device), "arguments": vars(args), "rows": []}
    for batch_size in args.batch_sizes:
        try:
            results["rows"] += measure(batch_size, args.duration_s, device, args.rounds, report=lambda t: print(t, flush=True))
        except Exception as error:  # one batch size failing (e.g. memory) must not lose the others
            print(f"batch {batch_size}: FAILED: {type(error).__name__}: {error}", flush=True)
            results["rows"].append({"batch_size": batch_size, "error": f"{type(error).__name__}: {error}"})
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
