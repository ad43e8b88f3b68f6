"""Eager vs CUDA graphs vs torch.compile for the one-pass forward on a GPU: time per call, peak memory, agreement.

    python benchmarks/gpu_graphs.py [--batch-sizes 1 32 256] [--duration-s 10] [--output graphs.json]
    python benchmarks/gpu_graphs.py --device cpu --preset mt2kd-tiny --batch-sizes 1 4 --rounds 2   (dry run)

The model is `mt2kd-66m` `MT2KDForMultiTask` (encoder + CTC logits + tagging + speaker embedding; the
transducer search is left out: it is not part of the captured graph) with random weights in bf16. Candidates:
  eager      the model as it is
  cudagraph  `training_mt2kd.export.cuda_graphs.CUDAGraphRunner`, one bucket per batch size (record time reported)
  compiled   `torch.compile(model)` (inductor, default mode; no max-autotune: it takes longer than a GPU lease on
             this model), one static graph per batch size (~60-80 s each on an H200, reported separately).
Phase 1 times eager and cudagraph interleaved for every batch size; phase 2 compiles and times compiled against
eager again (so a slow compile that runs past the time limit loses only its own rows). Every figure is printed as
soon as it is measured, with the largest deviation of the candidate's outputs from eager's (bf16), and the JSON is
rewritten after every row. On a CPU (`--device cpu`) the runner replays nothing (eager buckets) and no peak
memory is read: that mode only checks the script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import describe_machine
from benchmarks.models import StudentOnePass, test_audio
from benchmarks.timing import TimedCandidate, run_interleaved, synchronize

OUTPUT_FIELDS = ("last_hidden_state", "ctc_logits", "tagging_logits", "speaker_embeddings")


def _peak_mib(call: Callable, device: torch.device, calls: int = 2) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(calls):
        call()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def _max_deviation(outputs, reference) -> dict[str, float]:
    """Per head output both carry: ||candidate - eager|| / ||eager|| (frame-level tensors cut to eager's length).
    bf16 rounding alone gives ~1e-3 to 1e-2 here; a broken graph gives ~1."""
    deviation = {}
    for name in OUTPUT_FIELDS:
        ours, theirs = getattr(outputs, name, None), getattr(reference, name, None)
        if not isinstance(ours, torch.Tensor) or not isinstance(theirs, torch.Tensor):
            continue
        if ours.ndim == 3:
            ours = ours[:, : theirs.shape[1]]
        deviation[name] = round(((ours.float() - theirs.float()).norm() / theirs.float().norm().clamp(min=1e-12)).item(), 6)
    return deviation


class Bench:
    def __init__(self, preset: str, device: torch.device, dtype: torch.dtype, duration_s: float, rounds: int,
                 output: Path, report: Callable[[str], None]) -> None:
        self.one_pass = StudentOnePass(preset, device, dtype)
        self.model, self.device, self.duration_s, self.rounds = self.one_pass.model, device, duration_s, rounds
        self.output, self.report = output, report
        self.results = {"machine": describe_machine(device), "preset": preset, "rows": []}
        self._inputs: dict[int, dict[str, torch.Tensor]] = {}

    def inputs(self, batch_size: int) -> dict[str, torch.Tensor]:
        if batch_size not in self._inputs:
            self._inputs[batch_size] = self.one_pass.inputs(test_audio(batch_size, self.duration_s))
        return self._inputs[batch_size]

    def eager(self, batch_size: int):
        inputs = self.inputs(batch_size)

        def call():
            with torch.inference_mode():
                return self.model(**inputs)
        return call

    def add_row(self, batch_size: int, candidate: TimedCandidate, eager_s: float, deviation: dict[str, float],
                setup_s: float = 0.0) -> None:
        row = dict(
            batch_size=batch_size, duration_s=self.duration_s, candidate=candidate.name, median_s=candidate.median_s,
            audio_s_per_s=batch_size * self.duration_s / candidate.median_s,
            speedup_vs_eager=eager_s / candidate.median_s, peak_memory_mib=_peak_mib(candidate.call, self.device),
            relative_deviation_from_eager=deviation, setup_s=setup_s,
        )
        peak = f"peak {row['peak_memory_mib']:.0f} MiB" if row["peak_memory_mib"] is not None else "no peak (CPU)"
        self.report(
            f"batch {batch_size} x {self.duration_s:g} s {candidate.name}: {row['median_s'] * 1e3:.2f} ms/call, "
            f"{row['audio_s_per_s']:.0f} audio s/s, {row['speedup_vs_eager']:.2f}x eager, {peak}, "
            f"relative deviation from eager {deviation}"
        )
        self.results["rows"].append(row)
        self.save()

    def save(self) -> None:
        self.output.write_text(json.dumps(self.results, indent=2) + "\n")

    def eager_and_cuda_graphs(self, batch_size: int) -> None:
        from training_mt2kd.export.cuda_graphs import CUDAGraphRunner, ShapeBuckets

        inputs = self.inputs(batch_size)
        num_frames = inputs["input_features"].shape[1]
        started = time.perf_counter()
        runner = CUDAGraphRunner(self.model, ShapeBuckets(batch_sizes=(batch_size,), num_frames=(num_frames,)))
        runner(**inputs)
        synchronize(self.device)
        record_s = time.perf_counter() - started
        self.report(f"batch {batch_size}: CUDA graph recorded in {record_s:.1f} s (captures {runner.stats.captures})")
        reference = self.eager(batch_size)()
        deviation = _max_deviation(runner(**inputs), reference)
        candidates = [
            TimedCandidate("eager", self.eager(batch_size), warmup=3, rounds=self.rounds),
            TimedCandidate("cudagraph", lambda: runner(**inputs), warmup=3, rounds=self.rounds),
        ]
        run_interleaved(candidates, self.device, report=lambda _: None)
        self.add_row(batch_size, candidates[0], candidates[0].median_s, {})
        self.add_row(batch_size, candidates[1], candidates[0].median_s, deviation, record_s)
        del runner
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def compiled(self, batch_sizes: list[int]) -> None:
        # One static graph per batch size (~60 s each for mt2kd-66m on an H200); one dynamic-batch graph for 32 and
        # 256 did not finish within 120 s there.
        for batch_size in batch_sizes:
            torch._dynamo.reset()
            compiled = torch.compile(self.model)
            inputs = self.inputs(batch_size)

            def compiled_call(inputs=inputs):
                with torch.inference_mode():
                    return compiled(**inputs)

            started = time.perf_counter()
            first = compiled_call()
            synchronize(self.device)
            compile_s = time.perf_counter() - started
            self.report(f"batch {batch_size}: first compiled call (compiling if new) {compile_s:.1f} s")
            deviation = _max_deviation(first, self.eager(batch_size)())
            candidates = [
                TimedCandidate("eager", self.eager(batch_size), warmup=1, rounds=self.rounds),
                TimedCandidate("compiled", compiled_call, warmup=2, rounds=self.rounds),
            ]
            run_interleaved(candidates, self.device, report=lambda _: None)
            self.add_row(batch_size, candidates[1], candidates[0].median_s, deviation, compile_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--preset", default="mt2kd-66m")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--no-compile", action="store_true", help="phase 1 only (eager and CUDA graphs)")
    parser.add_argument("--output", default="gpu_graphs.json")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("this benchmark needs a CUDA GPU (--device cpu only checks the script)")
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    bench = Bench(args.preset, device, dtype, args.duration_s, args.rounds, Path(args.output),
                  report=lambda text: print(text, flush=True))
    bench.results["arguments"] = vars(args)
    for batch_size in args.batch_sizes:
        try:
            bench.eager_and_cuda_graphs(batch_size)
        except Exception as error:  # one batch size failing (e.g. memory) must not lose the others
            print(f"batch {batch_size}: eager/cudagraph FAILED: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
            bench.results["rows"].append({"batch_size": batch_size, "error": f"{type(error).__name__}: {error}"})
            bench.save()
    if not args.no_compile:
        try:
            bench.compiled(args.batch_sizes)
        except Exception as error:
            print(f"compiled FAILED: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
            bench.results["rows"].append({"candidate": "compiled", "error": f"{type(error).__name__}: {error}"})
            bench.save()


if __name__ == "__main__":
    main()
