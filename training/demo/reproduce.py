"""`mt2kd reproduce-small`: the demo's comparison over several seeds, reported as mean ± s.d."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training_mt2kd.demo.comparison import TASKS
from training_mt2kd.demo.orchestration import run_demo, task_bars
from training_mt2kd.demo.plan import DemoPlan, load_plan
from training_mt2kd.demo.plots import Bar, plot_task_bars
from training_mt2kd.demo.report import write_reproduce_report

DEFAULT_SEEDS = (0, 1, 2)


def run_reproduce_small(
    output_dir: str | Path, seeds: Sequence[int] = DEFAULT_SEEDS, plan: DemoPlan | None = None, jobs: int | None = None
) -> Path:
    """Run the demo once per seed in `output_dir/seed-<S>` (each reused when built) and write
    `output_dir/report.md`, `results.json` and `plots/task_bars.png`; returns the report's path."""
    if len(set(seeds)) < 2:
        raise ValueError(
            f"reproduce-small needs at least two different seeds for a standard deviation; got {list(seeds)}"
        )
    root = Path(output_dir).resolve()
    plan = plan or load_plan()
    per_seed, folders = [], []
    for seed in seeds:
        print(f"== seed {seed} ==", flush=True)
        outcome = run_demo(root / f"seed-{seed}", seed=seed, plan=plan, jobs=jobs)
        per_seed.append(outcome.results)
        folders.append(f"seed-{seed}")
    bars, floors = aggregate_bars(per_seed)
    plot_task_bars(bars, floors, root / "plots" / "task_bars.png")
    summary = {
        "seeds": list(seeds),
        "per_seed": {folder: results["comparison"] for folder, results in zip(folders, per_seed)},
    }
    (root / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return write_reproduce_report(root / "report.md", per_seed, folders)


def aggregate_bars(per_seed: Sequence[dict[str, Any]]) -> tuple[dict[str, list[Bar]], dict[str, tuple[str, float]]]:
    """The demo's bars and floors with each value the mean over seeds and the s.d. as its spread."""
    seeds_bars, seeds_floors = zip(*(task_bars(results) for results in per_seed))
    bars = {
        task: [
            Bar(
                label=bars_of_task[0].label,
                value=statistics.fmean(bar.value for bar in bars_of_task),
                spread=statistics.stdev(bar.value for bar in bars_of_task),
            )
            for bars_of_task in zip(*(seed_bars[task] for seed_bars in seeds_bars))
        ]
        for task in TASKS
    }
    floors = {
        task: (seeds_floors[0][task][0], statistics.fmean(floors[task][1] for floors in seeds_floors)) for task in TASKS
    }
    return bars, floors
