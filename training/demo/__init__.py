"""The embedded default: `mt2kd demo` runs the whole MT2KD method at toy scale offline on CPU, and
`mt2kd reproduce-small` repeats its comparison over seeds (see `orchestration` for what is built)."""

from training_mt2kd.demo.orchestration import DemoOutcome, StepRecord, run_demo
from training_mt2kd.demo.plan import DemoPlan, load_plan, packaged_plan
from training_mt2kd.demo.reproduce import DEFAULT_SEEDS, run_reproduce_small

__all__ = [
    "DEFAULT_SEEDS",
    "DemoOutcome",
    "DemoPlan",
    "StepRecord",
    "load_plan",
    "packaged_plan",
    "run_demo",
    "run_reproduce_small",
]
