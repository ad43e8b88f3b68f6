"""`mt2kd reproduce-small`: the demo's comparison over several seeds, mean ± s.d. in report.md."""

from __future__ import annotations

import argparse

from training_mt2kd.cli.commands.command import Command
from training_mt2kd.cli.commands.demo import add_jobs_argument, add_plan_arguments, plan_from_arguments

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", default="mt2kd-reproduce-small", help="folder for every seed's demo and the summary report"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="seeds to run (default: training_mt2kd.demo.DEFAULT_SEEDS, 0 1 2)"
    )
    add_plan_arguments(parser)
    add_jobs_argument(parser)


def run(args: argparse.Namespace) -> int:
    from transformers.utils import logging

    from training_mt2kd.demo import DEFAULT_SEEDS, run_reproduce_small

    logging.set_verbosity_error()
    seeds = args.seeds or DEFAULT_SEEDS
    report = run_reproduce_small(args.output, seeds=seeds, plan=plan_from_arguments(args), jobs=args.jobs)
    print(f"\nreport: {report}")
    return 0


COMMAND = Command(
    name="reproduce-small",
    help="repeat the demo's comparison (MT2KD vs multi-task from scratch vs single-task) over seeds: mean ± s.d.",
    add_arguments=add_arguments,
    run=run,
)
