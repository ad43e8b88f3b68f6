"""What a model folder was trained on and distilled from, written next to its weights, read by the model card.

The card must describe the model it ships: the demo's model knows only a synthetic corpus and tiny teachers, a
stage-1 run of `mt2kd_66m_stage1.yaml` distils AST and WavLM-SV, not BEATs and ECAPA. Each training stage writes
`TRAINING_METADATA_FILE` into its final folder from its own run config; a stage that starts from another folder
keeps that folder's record under `"init_from"`. A folder without the file gets a card that says so.

    {"stage": "stage1", "corpora": [{"name", "source", "config", "split", "task"}],
     "teachers": {"asr": "openai/whisper-large-v3", "tagging": ..., "speaker": ...},
     "init_from": {...the previous stage's record...} | null}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["TRAINING_METADATA_FILE", "read_training_metadata", "run_metadata", "stages_of", "write_training_metadata"]

TRAINING_METADATA_FILE = "mt2kd_training.json"
_CORPUS_FIELDS = ("name", "source", "config", "split", "task")
_TEACHER_ROLES = {"whisper": "asr", "tagging": "tagging", "speaker": "speaker"}


def run_metadata(
    stage: str, corpora: list[dict[str, Any]], teachers: dict[str, Any] | None = None,
    init_from: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The record of one training stage.

    Args:
        stage: `"stage1"` (distillation), `"stage2"` (fine-tuning) or a free name (e.g. `"demo"`).
        corpora: the run config's `data.train` entries (only name, source, config, split and task are kept;
            a local manifest is recorded by its file name, not the path of the machine).
        teachers: the run config's `teachers` section (`{whisper|tagging|speaker: {name_or_path, kind}}`), or
            already `{task: description}`.
        init_from: the folder the stage started from; its own record is kept under `"init_from"`.
    """
    kept = []
    for corpus in corpora:
        values = corpus if isinstance(corpus, dict) else vars(corpus)
        entry = {key: values.get(key) for key in _CORPUS_FIELDS if values.get(key) is not None}
        if "source" in entry and os.path.exists(str(entry["source"])):
            entry["source"] = Path(str(entry["source"])).name  # a local manifest: no path of this machine
        kept.append(entry)
    described = {}
    for key, value in (teachers or {}).items():
        if value is None or key == "cache_dir":
            continue
        role = _TEACHER_ROLES.get(key, key)
        if isinstance(value, dict):
            name = value.get("name_or_path", "?")
            if os.path.exists(str(name)):
                name = f"local teacher {Path(str(name)).name}"
            value = f"{name} ({value['kind']})" if value.get("kind") else str(name)
        described[role] = str(value)
    return {
        "stage": stage,
        "corpora": kept,
        "teachers": described,
        "init_from": read_training_metadata(init_from) if init_from is not None else None,
    }


def write_training_metadata(folder: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    path = Path(folder) / TRAINING_METADATA_FILE
    path.write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")
    return path


def read_training_metadata(folder: str | os.PathLike | None) -> dict[str, Any] | None:
    """The folder's record, or None when it has none (or `folder` is None)."""
    if folder is None:
        return None
    path = Path(folder) / TRAINING_METADATA_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not readable JSON ({error}); delete it or re-save it from the run") from None


def stages_of(metadata: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The records from the first stage to the last."""
    stages = []
    while metadata is not None:
        stages.insert(0, metadata)
        metadata = metadata.get("init_from")
    return stages
