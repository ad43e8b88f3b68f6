"""Record a finished `mt2kd demo` (and optionally `mt2kd reproduce-small`) run with the machine it ran on.

    python benchmarks/record_demo.py DEMO_DIR [--reproduce REPRO_DIR] [--note TEXT] [--output FILE]

Run `mt2kd demo --output DEMO_DIR` a second time before recording (every step is reused): the record
keeps what tests/test_demo_recorded_run.py checks: the plan the run used (so a changed demo.yaml
without a new run is caught), the build time of the fresh run, the wall-clock time of the second
(reusing) run, every model's test-split figures, and per seed the comparison of `reproduce-small`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.machine import describe_machine

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "demo.json"
KEPT_KEYS = ("seed", "reported_decoding", "comparison", "metrics", "corpus", "steps_per_run", "model_parameters",
             "cpu_cores", "plan", "build_s")  # fmt: skip


def demo_record(demo_dir: Path) -> dict:
    """The kept part of `DEMO_DIR/results.json`, with each step's build time (reused or not). Record
    after running the demo a second time on the same folder: `rerun` then holds that invocation's
    wall-clock time, which reused every step."""
    results = json.loads((demo_dir / "results.json").read_text(encoding="utf-8"))
    record = {key: results[key] for key in KEPT_KEYS}
    record["step_seconds"] = {step["name"]: round(step["seconds"], 1) for step in results["steps"]}
    record["rerun"] = {
        "wall_s": round(results["wall_s"], 1),
        "built_steps": [step["name"] for step in results["steps"] if not step["reused"]],
    }
    return record


def reproduce_record(reproduce_dir: Path) -> dict:
    """`REPRO_DIR/results.json` (seeds and each seed's comparison)."""
    return json.loads((reproduce_dir / "results.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo_dir", type=Path, help="a finished `mt2kd demo --output DIR` folder")
    parser.add_argument("--reproduce", type=Path, help="a finished `mt2kd reproduce-small --output DIR` folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--note", default="", help="how the runs were made (what else ran on the machine, when)")
    args = parser.parse_args(argv)
    record = {"machine": describe_machine(torch.device("cpu")), "note": args.note, "demo": demo_record(args.demo_dir)}
    if args.reproduce:
        record["reproduce_small"] = reproduce_record(args.reproduce)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return args.output


if __name__ == "__main__":
    main()
