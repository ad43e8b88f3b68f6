"""The subcommands of the `mt2kd` CLI, one module each.

Adding a subcommand (e.g. `mt2kd demo`):

1. write `training/cli/commands/demo.py` with a module-level `COMMAND = Command(name="demo", help=..., add_arguments=...,
   run=...)` (see [`Command`]); `run(args)` returns the exit status;
2. add `"demo"` to `COMMAND_MODULES` below (the order is the order of `mt2kd --help`).

Import heavy packages (torch, transformers, the model) inside `run`, not at module level: every command module is
imported to build `mt2kd --help`, which should answer at once.
"""

from __future__ import annotations

import importlib

from training_mt2kd.cli.commands.command import Command

__all__ = ["COMMAND_MODULES", "Command", "load_commands"]

COMMAND_MODULES = ("demo", "reproduce_small", "transcribe", "tag", "embed", "verify", "export_onnx")


def load_commands() -> list[Command]:
    """The `COMMAND` of every module in `COMMAND_MODULES`, in that order."""
    commands = [importlib.import_module(f"{__name__}.{module}").COMMAND for module in COMMAND_MODULES]
    names = [command.name for command in commands]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"two subcommands are named {duplicates}; give each command module its own name")
    return commands
