"""Streaming speed and memory of a causal MT2KD model (issue 17): per-chunk latency, real-time factor, and
resident memory over a long stream.

    python benchmarks/streaming.py                       # 66M causal config, 320 and 640 ms chunks, 2 threads
    python benchmarks/streaming.py --preset mt2kd-tiny --stream_s 20 --long_stream_s 60   # quick check

Random weights (speed does not depend on them). Each chunk is timed from its fbank frames to the greedy
transducer search's result; RTF = compute time / audio time. Memory: the process's resident set size
sampled while a long stream is decoded; a flat curve means the state does not grow. Prints a table and
writes JSON to benchmarks/results/streaming.json. Not a test: the lead runs it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from benchmarks.machine import describe_machine, load_average
from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForRNNT
from modeling_mt2kd.decoding.streaming_recognizer import StreamingRecognizer


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc), falling back to the peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_stream(model, chunk_size: int, left_context_frames: int, stream_s: float) -> dict:
    recognizer = StreamingRecognizer(model, "greedy_search", chunk_size, left_context_frames)
    frames_per_call = 2 * chunk_size  # new fbank frames per chunk (10 ms each)
    features = torch.randn(int(stream_s * 100) + 13, model.config.num_mel_bins)
    recognizer.accept_features(features[:13])  # the look-ahead of the first chunk
    latencies = []
    for start in range(13, features.shape[0] - frames_per_call + 1, frames_per_call):
        began = time.perf_counter()
        recognizer.accept_features(features[start : start + frames_per_call])
        latencies.append(time.perf_counter() - began)
    latencies.sort()
    chunk_s = frames_per_call / 100
    return {
        "chunk_size": chunk_size,
        "chunk_ms": chunk_s * 1000,
        "left_context_frames": left_context_frames,
        "chunks": len(latencies),
        "latency_ms_median": 1000 * latencies[len(latencies) // 2],
        "latency_ms_p95": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "rtf": sum(latencies) / (len(latencies) * chunk_s),
    }


def memory_over_stream(model, chunk_size: int, left_context_frames: int, stream_s: float, samples: int = 10) -> list:
    recognizer = StreamingRecognizer(model, "greedy_search", chunk_size, left_context_frames)
    piece = torch.randn(2 * chunk_size, model.config.num_mel_bins)
    total_chunks = int(stream_s * 100) // (2 * chunk_size)
    every = max(total_chunks // samples, 1)
    curve = []
    for index in range(total_chunks):
        recognizer.accept_features(piece)
        if index % every == 0 or index == total_chunks - 1:
            curve.append({"audio_s": (index + 1) * 2 * chunk_size / 100, "rss_mib": rss_mib()})
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mt2kd-66m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk_sizes", type=int, nargs="+", default=[16, 32], help="50 Hz frames (16 = 320 ms)")
    parser.add_argument("--left_context_frames", type=int, default=128)
    parser.add_argument("--stream_s", type=float, default=60.0, help="audio per latency measurement")
    parser.add_argument("--long_stream_s", type=float, default=3600.0, help="audio of the memory measurement")
    parser.add_argument("--parts", nargs="+", choices=("latency", "memory"), default=["latency", "memory"],
                        help="latency needs a quiet machine; memory does not (run it apart if time is short)")
    parser.add_argument("--output", default="benchmarks/results/streaming.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(
        args.preset, causal=True, chunk_size=args.chunk_sizes[0], left_context_frames=args.left_context_frames
    )
    model = MT2KDForRNNT(config).eval()
    results = {"machine": describe_machine(torch.device("cpu")), "preset": args.preset, "threads": args.threads,
               "left_context_frames": args.left_context_frames, "settings": []}
    print(f"{args.preset} causal, {args.threads} threads")
    print(f"{'chunk':>8} {'left ctx':>8} {'median ms':>10} {'p95 ms':>8} {'RTF':>6}")
    for chunk_size in args.chunk_sizes if "latency" in args.parts else []:
        row = time_stream(model, chunk_size, args.left_context_frames, args.stream_s)
        results["settings"].append(row)
        print(f"{row['chunk_ms']:>6.0f}ms {args.left_context_frames:>8} {row['latency_ms_median']:>10.1f} "
              f"{row['latency_ms_p95']:>8.1f} {row['rtf']:>6.3f}")
    if "memory" in args.parts:
        curve = memory_over_stream(model, args.chunk_sizes[0], args.left_context_frames, args.long_stream_s)
        results["memory"] = curve
        print("memory over the stream: " + ", ".join(f"{p['audio_s']:.0f}s {p['rss_mib']:.0f} MiB" for p in curve))
    results["load_average_after"] = load_average()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
