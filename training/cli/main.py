"""mt2kd: transcribe, tag, embed and verify audio files and folders with an MT2KD model folder.

    mt2kd transcribe --model DIR speech.wav recordings/ [--decoder ctc|transducer] [--timestamps word]
    mt2kd tag --model DIR clips/ [--top_k 5]
    mt2kd embed --model DIR speaker_a.flac speaker_b/
    mt2kd verify --model DIR enrolment.wav test_folder/   or   mt2kd verify --model DIR --trials trials.txt

Folders are searched recursively for audio files. Results are JSON on standard output (or `--output FILE`); a file
that cannot be read or processed gets an `"error"` entry and the others go on. The exit status is 1 when no file
succeeded, 2 for bad options or a model that cannot be loaded, else 0. `mt2kd COMMAND --help` lists the options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from training_mt2kd.cli.commands import load_commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The `mt2kd` parser with one subparser per registered command (`training_mt2kd.cli.commands`)."""
    parser = argparse.ArgumentParser(
        prog="mt2kd", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    for command in load_commands():
        description = command.description or command.help
        subparser = subparsers.add_parser(command.name, help=command.help, description=description)
        command.add_arguments(subparser)
        subparser.set_defaults(command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mt2kd` with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.command.run(args)
    except (OSError, ValueError) as error:  # per-file problems are reported in the results; these stop the command
        print(f"mt2kd {args.command_name}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
