"""Stage 1 → stage 2: which weights of the distilled model start the multi-task model."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from modeling_mt2kd import MT2KDForDistillation, MT2KDForMultiTask
from training_mt2kd.tasks import stage1_prefixes


def carried_prefixes() -> tuple[str, ...]:
    """The encoder and the heads the task table marks as distilled in stage 1 (tagging, speaker) carry
    over; the Whisper projection is dropped; CTC, transducer and the speaker classifier start fresh
    (the paper's recipe)."""
    return ("mt2kd.", *stage1_prefixes())


@dataclass
class HandoverReport:
    carried: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)


@torch.no_grad()
def carry_over_stage1(model: MT2KDForMultiTask, stage1: MT2KDForDistillation) -> HandoverReport:
    """Copy the carried weights of `stage1` into `model` (in place); shapes must agree."""
    report = HandoverReport()
    carried = carried_prefixes()
    targets = model.state_dict()
    for name, tensor in stage1.state_dict().items():
        if not name.startswith(carried) or name not in targets:
            report.dropped.append(name)
            continue
        if targets[name].shape != tensor.shape:
            raise ValueError(
                f"cannot carry {name} from stage 1: shape {tuple(tensor.shape)} there, {tuple(targets[name].shape)} "
                "here; stage 2 must use the stage-1 encoder and head sizes"
            )
        targets[name].copy_(tensor)
        report.carried.append(name)
    report.fresh = sorted(set(targets) - set(report.carried))
    return report
