"""Heads added from outside the model package: builders that `MT2KDForMultiTask.__init__` runs, so that a model with
such a head is rebuilt by `from_pretrained` and its saved weights load into it.

The task table (`training_mt2kd.tasks.register_task`) registers a builder for each row with a `head`; the model
package imports nothing from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class AddedHead:
    """`build(config)` makes the head; the model builds it, as attribute `attribute`, when one of `flags` is on in
    its config."""

    attribute: str
    flags: tuple[str, ...]
    build: Callable[[Any], nn.Module]


_ADDED_HEADS: dict[str, AddedHead] = {}


def register_added_head(head: AddedHead) -> None:
    """Add (or replace) the builder of the head held as `head.attribute`."""
    _ADDED_HEADS[head.attribute] = head


def unregister_added_head(attribute: str) -> None:
    _ADDED_HEADS.pop(attribute, None)


def build_added_heads(model: nn.Module) -> list[str]:
    """Build, as sub-modules of `model`, the registered heads whose flag is on in `model.config` and that `model`
    lacks; returns their attribute names."""
    built = []
    for head in _ADDED_HEADS.values():
        if getattr(model, head.attribute, None) is not None:
            continue
        if any(getattr(model.config, flag, False) for flag in head.flags):
            model.add_module(head.attribute, head.build(model.config))
            built.append(head.attribute)
    return built
