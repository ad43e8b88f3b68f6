"""`mt2kd tag`: audio-event tags with sigmoid scores (the windowed mt2kd-audio-classification pipeline)."""

from __future__ import annotations

import argparse

from training_mt2kd.cli.commands.command import Command, add_inference_arguments, add_window_arguments, window_options

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="audio files and folders (searched recursively)")
    add_inference_arguments(parser)
    parser.add_argument("--top_k", type=int, default=5, help="tags per file, highest score first (default 5)")
    add_window_arguments(parser)
    parser.add_argument(
        "--window_pooling", choices=("mean", "max"), default="mean",
        help="tags of a long file from the windows' mean logits, or each tag's highest score in any window",
    )


def run(args: argparse.Namespace) -> int:
    from training_mt2kd.cli.commands.audio_files import find_audio_files
    from training_mt2kd.cli.commands.model_pipeline import load_pipeline
    from training_mt2kd.cli.commands.per_file import SAMPLING_RATE, run_per_file
    from training_mt2kd.cli.commands.report import write_report

    if args.top_k < 1:
        raise ValueError(f"--top_k must be >= 1; got {args.top_k}")
    options = {**window_options(args), "window_pooling": args.window_pooling}
    tagger = load_pipeline("mt2kd-audio-classification", args.model, args.device)

    def tag(waveforms):
        inputs = [{"raw": waveform, "sampling_rate": SAMPLING_RATE} for waveform in waveforms]
        return [{"tags": tags} for tags in tagger(inputs, batch_size=len(inputs), top_k=args.top_k, **options)]

    results = run_per_file(find_audio_files(args.paths), tag, args.batch_size, "tagging")
    return write_report("tag", args.model, results, args.output)


COMMAND = Command(
    name="tag",
    help="tag audio events: {path, tags: [{label, score}]} per file (multi-label sigmoid scores)",
    add_arguments=add_arguments,
    run=run,
)
