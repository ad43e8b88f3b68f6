"""`mt2kd verify`: same speaker or not, by the cosine score of speaker embeddings, for trials of files or a list."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training_mt2kd.cli.commands.command import Command, add_inference_arguments, add_window_arguments, window_options

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="ENROLLMENT TEST",
        help="an enrolment and a test path, each a file or a folder (searched recursively): every enrolment file is "
        "scored against every test file",
    )
    add_inference_arguments(parser)
    parser.add_argument(
        "--trials", help="trial list instead of the two paths: lines 'enrolment test label' (1/0 or target/nontarget)"
    )
    parser.add_argument("--audio_root", help="folder the trial list's paths are relative to (default: its folder)")
    parser.add_argument(
        "--threshold", type=float,
        help="cosine score from which two files are the same speaker (default: the threshold calibrated on dev "
        "trials and stored in the model folder; without one, scores are reported with same_speaker null)",
    )
    add_window_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from processing_mt2kd.pipelines.speaker_threshold import NO_THRESHOLD_MESSAGE
    from training_mt2kd.evaluation.metrics import cosine_scores, equal_error_rate, read_trial_list
    from training_mt2kd.cli.commands.audio_files import find_audio_files
    from training_mt2kd.cli.commands.embed import speaker_embeddings
    from training_mt2kd.cli.commands.model_pipeline import load_pipeline
    from training_mt2kd.cli.commands.per_file import run_per_file
    from training_mt2kd.cli.commands.report import write_report

    if len(args.paths) != (0 if args.trials else 2):
        raise ValueError(
            f"pass either two paths (ENROLLMENT TEST) or --trials FILE; got {len(args.paths)} path(s)"
            + (" and --trials" if args.trials else "")
        )
    if args.trials is not None:
        root = Path(args.audio_root) if args.audio_root else Path(args.trials).parent
        trials = [(trial.enrollment, trial.test, trial.is_target) for trial in read_trial_list(args.trials)]
    else:
        root = Path()
        enrollments, tests = find_audio_files(args.paths[:1]), find_audio_files(args.paths[1:])
        trials = [(enrollment, test, None) for enrollment in enrollments for test in tests]
    options = window_options(args)
    verifier = load_pipeline("mt2kd-speaker-verification", args.model, args.device, **options)
    threshold = verifier.threshold if args.threshold is None else args.threshold
    if threshold is None:
        print(f"mt2kd verify: {NO_THRESHOLD_MESSAGE}", file=sys.stderr)
    files = list(dict.fromkeys(path for enrollment, test, _ in trials for path in (enrollment, test)))
    embedded = run_per_file(
        [str(root / path) for path in files], speaker_embeddings(verifier), args.batch_size, "embedding"
    )
    by_file = dict(zip(files, embedded))

    results, scored = [], []
    for enrollment, test, is_target in trials:
        result = {"enrollment": enrollment, "test": test}
        errors = [f"{path}: {by_file[path]['error']}" for path in (enrollment, test) if "error" in by_file[path]]
        if errors:
            result["error"] = "; ".join(errors)
        else:
            score = float(cosine_scores(*(torch.from_numpy(by_file[path]["embedding"]) for path in (enrollment, test))))
            result.update(score=score, same_speaker=None if threshold is None else score >= threshold)
            if is_target is not None:
                result["is_target"] = is_target
                scored.append((score, is_target))
        results.append(result)

    summary = {"threshold": threshold, "threshold_source": _threshold_source(args.threshold, verifier)}
    if len({is_target for _, is_target in scored}) == 2:
        summary["equal_error_rate"] = equal_error_rate(*zip(*scored))
    return write_report("verify", args.model, results, args.output, **summary)


def _threshold_source(given: float | None, verifier) -> str:
    if given is not None:
        return "--threshold"
    calibrated = verifier.calibrated_threshold
    if calibrated is None:
        return "none: the model folder has no calibrated threshold, so no decisions"
    return f"calibrated on {calibrated.trials} ({calibrated.method.replace('_', ' ')})"


COMMAND = Command(
    name="verify",
    help="speaker verification: {enrollment, test, score, same_speaker} per trial (cosine scores)",
    add_arguments=add_arguments,
    run=run,
)
