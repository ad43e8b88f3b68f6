"""`mt2kd embed`: speaker embeddings (mt2kd-speaker-verification pipeline)."""

from __future__ import annotations

import argparse

from training_mt2kd.cli.commands.command import Command, add_inference_arguments, add_window_arguments, window_options

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="audio files and folders (searched recursively)")
    add_inference_arguments(parser)
    add_window_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from training_mt2kd.cli.commands.audio_files import find_audio_files
    from training_mt2kd.cli.commands.model_pipeline import load_pipeline
    from training_mt2kd.cli.commands.per_file import run_per_file
    from training_mt2kd.cli.commands.report import write_report

    options = window_options(args)
    verifier = load_pipeline("mt2kd-speaker-verification", args.model, args.device, **options)
    results = run_per_file(find_audio_files(args.paths), speaker_embeddings(verifier), args.batch_size, "embedding")
    return write_report("embed", args.model, results, args.output)


def speaker_embeddings(verifier):
    """Batch inference for `run_per_file`: `{"embedding": (dim,) float32}` per waveform (16 kHz); long waveforms
    are embedded window by window (the pipeline's window settings)."""

    def embed(waveforms):
        return [{"embedding": embedding} for embedding in verifier.embed(waveforms, batch_size=len(waveforms))]

    return embed


COMMAND = Command(
    name="embed",
    help="speaker embeddings: {path, embedding} per file",
    add_arguments=add_arguments,
    run=run,
)
