"""The demo plan: corpus size, training steps, shared run configuration and evaluation, from YAML.

A plan file (e.g. `training/configs/demo.yaml`) has the sections below; `base: OTHER.yaml` (relative
to the file) starts from another plan and changes only what the file lists, merged key by key.

    corpus:      keyword arguments of `synthesize_demo_corpus` (without the seed)
    steps:       optimiser steps of asr_teacher, tagging_teacher, speaker_teacher, stage1, stage2
                 (multi-task from scratch runs `stage2` steps: the same budget as MT2KD's stage 2)
    run:         run-configuration values (training/recipe/config.py) shared by every training run
    stage1:      values merged over `run` for stage 1
    evaluation:  decoding (list), reported_decoding, batch_duration_s
    teachers:    (optional) stage 1's teachers: `asr: demo | whisper-tiny.en`, `speaker: demo | resemblyzer`;
                 "demo" (the default) distils the demo's own single-task teachers, the others real
                 pretrained models from pip packages (`mt2kd demo --real-teachers` sets both; see
                 training/demo/stage1_teachers.py)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from training_mt2kd.yaml_config import apply_override, read_config

SECTIONS = ("corpus", "steps", "run", "stage1", "evaluation", "teachers")
TEACHER_CHOICES = {"asr": ("demo", "whisper-tiny.en"), "speaker": ("demo", "resemblyzer")}
DEFAULT_TEACHERS = {"asr": "demo", "speaker": "demo"}
REAL_TEACHERS = {"asr": "whisper-tiny.en", "speaker": "resemblyzer"}
STEP_NAMES = ("asr_teacher", "tagging_teacher", "speaker_teacher", "stage1", "stage2")
EVALUATION_KEYS = ("decoding", "reported_decoding", "batch_duration_s")


@dataclass(frozen=True)
class DemoPlan:
    """A checked plan (see the module docstring for the meaning of each section)."""

    corpus: dict[str, Any]
    steps: dict[str, int]
    run: dict[str, Any]
    stage1: dict[str, Any]
    evaluation: dict[str, Any]
    teachers: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEACHERS))

    @property
    def uses_real_teachers(self) -> bool:
        return self.teachers != DEFAULT_TEACHERS

    def to_dict(self) -> dict[str, Any]:
        return {section: copy.deepcopy(getattr(self, section)) for section in SECTIONS}


def packaged_plan(name: str = "demo.yaml") -> Path:
    """A plan shipped in `training_mt2kd/configs/` (`demo.yaml`: the full demo; `demo_ci.yaml`: the reduced one)."""
    return Path(str(resources.files("training_mt2kd").joinpath("configs", name)))


def load_plan(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DemoPlan:
    """Read a plan (default: the packaged `demo.yaml`), apply `section.option=value` overrides
    (e.g. `steps.stage2=100`, `run.optim.lr=0.03`) and check it."""
    values = read_config(Path(path) if path is not None else packaged_plan(), "demo plan")
    for assignment in overrides:
        apply_override(values, assignment, example="steps.stage2=100")
    return plan_from_dict(values, where=str(path or packaged_plan()))


def real_teacher_overrides() -> list[str]:
    """`--set` assignments that make stage 1 distil the real teachers (`mt2kd demo --real-teachers`)."""
    return [f"teachers.{task}={choice}" for task, choice in REAL_TEACHERS.items()]


def plan_from_dict(values: dict[str, Any], where: str = "demo plan") -> DemoPlan:
    teachers = values.get("teachers") or {}
    values = {**values, "teachers": {**DEFAULT_TEACHERS, **teachers} if isinstance(teachers, dict) else teachers}
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown sections {unknown}; a demo plan has {list(SECTIONS)}")
    missing = [section for section in SECTIONS if not isinstance(values.get(section), dict)]
    if missing:
        raise ValueError(f"{where}: sections {missing} are missing or not mappings")
    steps = values["steps"]
    if sorted(steps) != sorted(STEP_NAMES) or not all(isinstance(n, int) and n >= 1 for n in steps.values()):
        raise ValueError(f"{where}: steps must give a positive integer for each of {list(STEP_NAMES)}; got {steps}")
    evaluation = values["evaluation"]
    if sorted(evaluation) != sorted(EVALUATION_KEYS):
        raise ValueError(f"{where}: evaluation must give exactly {list(EVALUATION_KEYS)}; got {sorted(evaluation)}")
    if evaluation["reported_decoding"] not in evaluation["decoding"]:
        raise ValueError(
            f"{where}: evaluation.reported_decoding {evaluation['reported_decoding']!r} must be one of "
            f"evaluation.decoding {evaluation['decoding']}"
        )
    for task, choice in values["teachers"].items():
        if task not in TEACHER_CHOICES or choice not in TEACHER_CHOICES[task]:
            raise ValueError(
                f"{where}: teachers.{task}={choice!r} is not a choice; teachers has "
                + "; ".join(f"{name}: {' | '.join(options)}" for name, options in TEACHER_CHOICES.items())
            )
    if "seed" in values["corpus"]:
        raise ValueError(f"{where}: corpus.seed is set by `mt2kd demo --seed`; remove it from the plan")
    return DemoPlan(**{section: copy.deepcopy(values[section]) for section in SECTIONS})
