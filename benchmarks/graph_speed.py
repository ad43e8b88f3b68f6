"""Speed from the graph (issue 14 item 4): one process, interleaved rounds, 2 CPU threads.

Candidates, all with the same weights:
  before     the eager encoder as of `--before-rev` (default: the commit before the graph-clean work),
             loaded from git into a private package, so both versions run side by side;
  eager      today's eager model, fp32;
  compiled   torch.compile (inductor) of today's model, fp32;
  bf16       today's eager model in bfloat16;
  onnx       onnxruntime on an exported encoder (`--onnx FILE.onnx`; added by the ONNX export work).
More candidates register through `CANDIDATES` (name → factory(model, features, mask) → call).

    python -m benchmarks.graph_speed                      # mt2kd-66m, batch 1 x 10 s and 8 x 10 s
    python -m benchmarks.graph_speed --preset mt2kd-tiny --seconds 1 --rounds 1   # quick check

Prints a table (seconds per call, real-time factor, ratio to `before`) and writes JSON to
benchmarks/results/graph_speed.json. Figures are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDModel

from .machine import REPO_ROOT, git_commit, load_average
from .timing import TimedCandidate, median_ratio, run_interleaved

FRAMES_PER_SECOND = 100  # fbank frames per second of audio
DEFAULT_BEFORE_REV = "3dad267^"  # the last commit before the graph-clean forwards
RESULTS_PATH = REPO_ROOT / "benchmarks" / "results" / "graph_speed.json"

Call = Callable[[], object]
Factory = Callable[[MT2KDModel, torch.Tensor, torch.Tensor, argparse.Namespace], Call]


def load_encoder_at(rev: str) -> type:
    """`Zipformer2Encoder` as of git revision `rev`, imported as a private package (its files only
    need `masks` and `initialization` from the package root)."""
    folder = Path(tempfile.mkdtemp(prefix="mt2kd-before-"))
    archive = subprocess.run(
        ["git", "archive", rev, "modeling_mt2kd/encoder", "modeling_mt2kd/masks.py", "modeling_mt2kd/initialization.py"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    package = folder / "modeling_mt2kd"
    package.rename(folder / "mt2kd_before")
    (folder / "mt2kd_before" / "__init__.py").write_text("")
    sys.path.insert(0, str(folder))
    return importlib.import_module("mt2kd_before.encoder").Zipformer2Encoder


def before_candidate(model, features, mask, args) -> Call:
    encoder = load_encoder_at(args.before_rev)(model.config).eval()
    encoder.load_state_dict(model.encoder.state_dict())
    lengths = mask.sum(dim=-1)
    return lambda: encoder(features, lengths).last_hidden_state


def eager_candidate(model, features, mask, args) -> Call:
    return lambda: model(features, attention_mask=mask).last_hidden_state


def compiled_candidate(model, features, mask, args) -> Call:
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    return lambda: compiled(features, attention_mask=mask).last_hidden_state


def bf16_candidate(model, features, mask, args) -> Call:
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    bf16_features = features.to(torch.bfloat16)
    return lambda: bf16_model(bf16_features, attention_mask=mask).last_hidden_state


def onnx_candidate(model, features, mask, args) -> Call | None:
    if args.onnx is None:
        return None
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(args.onnx), options, providers=["CPUExecutionProvider"])
    available = {"input_features": features.numpy(), "attention_mask": mask.numpy()}
    feeds = {item.name: available[item.name] for item in session.get_inputs() if item.name in available}
    return lambda: session.run(None, feeds)


CANDIDATES: dict[str, Factory] = {
    "before": before_candidate,
    "eager": eager_candidate,
    "compiled": compiled_candidate,
    "bf16": bf16_candidate,
    "onnx": onnx_candidate,
}


def build_model(args) -> MT2KDModel:
    torch.manual_seed(0)
    if args.model:
        return MT2KDModel.from_pretrained(args.model).eval()
    return MT2KDModel(MT2KDConfig.from_preset(args.preset)).eval()


def measure(args) -> dict:
    torch.set_num_threads(args.threads)
    model = build_model(args)
    frames = int(args.seconds * FRAMES_PER_SECOND)
    results = {"machine": {"commit": git_commit(), "threads": args.threads, "torch": torch.__version__},
               "before_rev": args.before_rev, "settings": []}
    for batch_size in args.batch_sizes:
        generator = torch.Generator().manual_seed(batch_size)
        features = torch.randn(batch_size, frames, model.config.num_mel_bins, generator=generator)
        mask = torch.ones(batch_size, frames, dtype=torch.long)
        candidates = []
        with torch.inference_mode():
            for name in args.candidates:
                call = CANDIDATES[name](model, features, mask, args)
                if call is not None:
                    candidates.append(TimedCandidate(name, call, warmup=args.warmup, rounds=args.rounds))
            print(f"batch {batch_size} x {args.seconds:g} s (load {load_average()})", flush=True)
            run_interleaved(candidates, torch.device("cpu"))
        audio_s = batch_size * args.seconds
        reference = next((c for c in candidates if c.name == "before"), None)
        rows = []
        for candidate in candidates:
            rows.append({
                "candidate": candidate.name,
                "median_s": candidate.median_s,
                "rtf": candidate.median_s / audio_s,
                "ratio_to_before": median_ratio(candidate.seconds, reference.seconds) if reference else None,
                "seconds": candidate.seconds,
            })
        results["settings"].append({"batch_size": batch_size, "seconds": args.seconds, "rows": rows,
                                    "load_average_after": load_average()})
    return results


def print_table(results: dict) -> None:
    print(f"\n{'batch':>5} {'candidate':>10} {'s/call':>9} {'RTF':>8} {'x before':>9}")
    for setting in results["settings"]:
        for row in setting["rows"]:
            ratio = f"{row['ratio_to_before']:.3f}" if row["ratio_to_before"] is not None else "-"
            print(f"{setting['batch_size']:>5} {row['candidate']:>10} {row['median_s']:>9.4f} {row['rtf']:>8.4f} {ratio:>9}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mt2kd-66m")
    parser.add_argument("--model", help="a saved model folder instead of a random-init preset")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per utterance")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--candidates", nargs="+", default=[name for name in CANDIDATES], choices=list(CANDIDATES))
    parser.add_argument("--before-rev", default=DEFAULT_BEFORE_REV)
    parser.add_argument("--onnx", type=Path, help="an exported encoder .onnx taking input_features (+ attention_mask)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    results = measure(args)
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
