"""What a subcommand of the `mt2kd` CLI is, and the options the inference subcommands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Command", "add_inference_arguments", "add_window_arguments", "window_options"]


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


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """`--window_length_s` and `--window_overlap_s` of the windowed pipelines (tag, embed, verify)."""
    parser.add_argument(
        "--window_length_s", type=float,
        help="recordings longer than this many seconds go through the model in overlapping windows whose results "
        "are pooled, bounding memory (default 30)",
    )
    parser.add_argument("--window_overlap_s", type=float, help="seconds shared by consecutive windows (default 5)")


def window_options(args: argparse.Namespace) -> dict[str, float]:
    """The pipeline call parameters of `--window_length_s` / `--window_overlap_s`, checked (ValueError: exit 2)."""
    from processing_mt2kd.pipelines import WindowSettings

    options = {
        name: getattr(args, name) for name in ("window_length_s", "window_overlap_s") if getattr(args, name) is not None
    }
    WindowSettings.from_arguments(**options)  # refuse bad sizes before any file is read
    return options
