"""`mt2kd transcribe`: speech to text with the CTC head (stock ASR pipeline) or the transducer head."""

from __future__ import annotations

import argparse
import math

from training_mt2kd.cli.commands.command import Command, add_inference_arguments

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="audio files and folders (searched recursively)")
    add_inference_arguments(parser)
    parser.add_argument(
        "--decoder", choices=("ctc", "transducer"), default="ctc",
        help="ASR head: ctc (greedy, the automatic-speech-recognition pipeline) or transducer (default ctc)",
    )
    parser.add_argument(
        "--decoding_method", choices=("greedy_search", "modified_beam_search"), default="greedy_search",
        help="transducer search (default greedy_search)",
    )
    parser.add_argument("--beam", type=int, default=4, help="beam size of modified_beam_search (default 4)")
    parser.add_argument(
        "--chunk_length_s", type=float, default=30.0,
        help="decode long recordings in chunks of this many seconds, bounding memory (default 30; 0 = whole file)",
    )
    parser.add_argument("--timestamps", choices=("word", "char"), help="also return word or character timestamps")
    parser.add_argument(
        "--streaming", action="store_true",
        help="decode each file as a live stream with a causal model (mt2kd-streaming-asr) and print the partial "
        "transcripts to stderr as they grow",
    )
    parser.add_argument(
        "--stream_chunk_s", type=float, default=0.1, help="audio fed per streaming step in seconds (default 0.1)"
    )


def run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.chunk_length_s) and args.chunk_length_s >= 0):
        raise ValueError(
            f"--chunk_length_s must be a number of seconds > 0 (e.g. 30), or 0 to decode each file whole; "
            f"got {args.chunk_length_s}"
        )
    from training_mt2kd.cli.commands.audio_files import find_audio_files
    from training_mt2kd.cli.commands.model_pipeline import load_pipeline
    from training_mt2kd.cli.commands.per_file import SAMPLING_RATE, run_per_file
    from training_mt2kd.cli.commands.report import write_report

    if args.streaming:
        from training_mt2kd.cli.commands.streaming_transcribe import streaming_transcriber

        asr = load_pipeline("mt2kd-streaming-asr", args.model, args.device)
        transcribe = streaming_transcriber(asr, SAMPLING_RATE, args.stream_chunk_s, args.timestamps)
        results = run_per_file(find_audio_files(args.paths), transcribe, args.batch_size, "transcribing")
        return write_report("transcribe", args.model, results, args.output)
    if args.decoder == "ctc":
        asr = load_pipeline("automatic-speech-recognition", args.model, args.device)
        options = {}
    else:
        asr = load_pipeline("mt2kd-transducer-asr", args.model, args.device)
        options = {"decoding_method": args.decoding_method, "beam": args.beam}

    def transcribe(waveforms):
        # Fresh dicts on every call: the stock pipeline empties the dicts it is given.
        inputs = [{"raw": waveform, "sampling_rate": SAMPLING_RATE} for waveform in waveforms]
        return asr(
            inputs, batch_size=len(inputs), chunk_length_s=args.chunk_length_s or None,
            return_timestamps=args.timestamps, **options,
        )

    results = run_per_file(find_audio_files(args.paths), transcribe, args.batch_size, "transcribing")
    return write_report("transcribe", args.model, results, args.output)


COMMAND = Command(
    name="transcribe",
    help="transcribe speech: {path, text[, chunks with timestamps]} per file",
    add_arguments=add_arguments,
    run=run,
)
