"""What a subcommand of the `mt2kd` CLI is, and the options the inference subcommands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Command", "add_inference_arguments"]


@dataclass(frozen=True)
class Command:
    """One `mt2kd NAME ...` subcommand.

    Args:
        name: the word after `mt2kd` (e.g. `"transcribe"`, `"reproduce-small"`).
        help: one line for `mt2kd --help`.
        add_arguments: adds the subcommand's options to its parser.
        run: runs it with the parsed options; returns the exit status (0 = success).
        description: longer text for `mt2kd NAME --help` (default: `help`).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """`--model`, `--output`, `--batch_size` and `--device`, shared by transcribe, tag, embed and verify."""
    parser.add_argument(
        "--model", required=True, help="model folder (save_pretrained, with feature extractor and tokenizer)"
    )
    parser.add_argument("--output", help="write the JSON results to this file (default: standard output)")
    parser.add_argument("--batch_size", type=int, default=8, help="recordings per model call (default 8)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
