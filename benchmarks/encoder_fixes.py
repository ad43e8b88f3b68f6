"""The exact encoder speed fixes of issue 14 item 4, one at a time: interleaved before/after ratios.

Each fix is a commit to `modeling_mt2kd/encoder/`. This script loads the encoder as of `--before`
(default: HEAD~1) from git into a private package, gives it today's weights, and times it against
today's encoder on the same input in one process, rounds interleaved (before, after, before, after,
…). It prints the median per-round time ratio after / before (< 1: faster) and the largest
difference between the two outputs relative to the largest output value (the fixes are exact:
≤ 1e-6 in fp32, 0 where the arithmetic is unchanged).

    flock /tmp/mt2kd-cpu.lock python -m benchmarks.encoder_fixes                 # last commit's fix
    flock /tmp/mt2kd-cpu.lock python -m benchmarks.encoder_fixes --before 1ec37b8 # all fixes together
    flock /tmp/mt2kd-cpu.lock python -m benchmarks.encoder_fixes --before A --after B  # two revisions
    python -m benchmarks.encoder_fixes --preset mt2kd-tiny --seconds 1 --rounds 1 # quick check

Settings as the issue asks: mt2kd-66m (random weights, seed 0), batch 1 × 10 s, 2 threads, eval,
`torch.inference_mode()`, unpadded input (no attention mask, as a single utterance is passed), and
`--padded` to pass an all-ones mask instead. Figures mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDModel

from .machine import REPO_ROOT, load_average
from .timing import TimedCandidate, median_ratio, run_interleaved

FRAMES_PER_SECOND = 100  # fbank frames per second of audio
# Files of the package root the encoder folder may import, at any revision (absent ones are skipped).
ENCODER_DEPENDENCIES = ("masks.py", "initialization.py", "lengths.py", "graph_capture.py")


def load_encoder_at(rev: str) -> type:
    """`Zipformer2Encoder` as of git revision `rev`, imported as a private package `mt2kd_at_<rev>`."""
    paths = ["modeling_mt2kd/encoder"]
    for name in ENCODER_DEPENDENCIES:
        exists = subprocess.run(["git", "cat-file", "-e", f"{rev}:modeling_mt2kd/{name}"], cwd=REPO_ROOT).returncode == 0
        if exists:
            paths.append(f"modeling_mt2kd/{name}")
    archive = subprocess.run(["git", "archive", rev, *paths], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="mt2kd-encoder-"))
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    name = "mt2kd_at_" + "".join(c if c.isalnum() else "_" for c in rev)
    (folder / "modeling_mt2kd").rename(folder / name)
    (folder / name / "__init__.py").write_text("")
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"{name}.encoder").Zipformer2Encoder


def _accepts_no_lengths(encoder) -> bool:
    """Whether this revision's encoder takes input_lengths=None (no padding)."""
    import inspect

    return inspect.signature(type(encoder).forward).parameters["input_lengths"].default is None


def relative_difference(after: torch.Tensor, before: torch.Tensor) -> float:
    """max |after - before| / max |before|."""
    return ((after - before).abs().max() / before.abs().max()).item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD~1", help="git revision of the encoder to compare with")
    parser.add_argument("--after", default=None, help="git revision of the encoder to time (default: the working tree)")
    parser.add_argument("--preset", default="mt2kd-66m")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--padded", action="store_true", help="pass an all-ones attention mask (the masked path)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MT2KDModel(MT2KDConfig.from_preset(args.preset)).eval()
    before = load_encoder_at(args.before)(model.config).eval()
    before.load_state_dict(model.encoder.state_dict())
    frames = int(args.seconds * FRAMES_PER_SECOND)
    features = torch.randn(args.batch_size, frames, model.config.num_mel_bins)
    lengths = torch.full((args.batch_size,), frames)
    mask = torch.ones(args.batch_size, frames, dtype=torch.long) if args.padded else None

    def run_before() -> torch.Tensor:
        return before(features, lengths).last_hidden_state

    if args.after is None:
        def run_after() -> torch.Tensor:
            return model(features, attention_mask=mask).last_hidden_state
    else:  # an encoder from git: unpadded = no lengths, where that revision accepts None
        after = load_encoder_at(args.after)(model.config).eval()
        after.load_state_dict(model.encoder.state_dict())
        after_lengths = None if mask is None and _accepts_no_lengths(after) else lengths

        def run_after() -> torch.Tensor:
            return after(features, after_lengths).last_hidden_state

    with torch.inference_mode():
        difference = relative_difference(run_after(), run_before())
        candidates = [
            TimedCandidate("before", run_before, args.warmup, args.rounds),
            TimedCandidate("after", run_after, args.warmup, args.rounds),
        ]
        load_start = load_average()
        run_interleaved(candidates, torch.device("cpu"))
    ratio = median_ratio(candidates[1].seconds, candidates[0].seconds)
    result = {
        "before": args.before, "preset": args.preset, "batch_size": args.batch_size, "seconds": args.seconds,
        "after": args.after or "working tree", "threads": args.threads, "padded": args.padded, "before_s": candidates[0].median_s,
        "after_s": candidates[1].median_s, "ratio_after_before": ratio, "max_relative_difference": difference,
        "load_average": (load_start, load_average()),
    }
    print(
        f"{args.preset} batch {args.batch_size} x {args.seconds:g} s, {args.threads} threads, before={args.before}, after={args.after or 'working tree'}: "
        f"before {result['before_s']:.4f} s, after {result['after_s']:.4f} s, ratio after/before {ratio:.3f}; "
        f"max relative output difference {difference:.2e}; load {load_start} -> {result['load_average'][1]}"
    )
    return result


if __name__ == "__main__":
    main()
