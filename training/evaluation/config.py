"""Evaluation configuration: the YAML format of `training/evaluate.py`, its entries and their checks.

CONFIG.yaml (examples: training/configs/eval_paper.yaml, training/configs/eval_tiny.yaml):

    batch_duration_s: 200        # seconds of audio per batch (longest first); --batch_duration_s overrides
    num_workers: 0               # DataLoader processes that decode audio and compute features
    evaluations:                 # one entry per (task, dataset)
      - task: asr                # asr | tagging | speaker
        dataset: openslr/librispeech_asr   # reported name; the Hub id to load unless `source` is given
        dataset_config: clean    # Hub configuration (reported as given; default null)
        split: test              # Hub split, or the value kept from a manifest's mapped `split` column
        source: an4/metadata.csv # optional: local csv/tsv/json/jsonl/parquet manifest or audiofolder
        root: ...                # optional: folder that relative audio paths resolve against
        columns: {audio: audio, text: text}   # our role -> dataset column (audio, text, labels,
                                 # speaker, id, duration, split); default: audio + the task's role
        decoding: [ctc_greedy, greedy_search, modified_beam_search]   # asr; default: the model's
                                 # greedy methods
        beam_size: 4             # asr, modified_beam_search
      - task: speaker
        trials: veri_test2.txt   # `enrol test label` or VoxCeleb `label enrol test` lines, paths under
        root: wav                # `root`; without `trials`, every pair of a corpus with a speaker column
        p_targets: [0.01, 0.05]  # minDCF operating points
        calibrate_threshold: false   # true on DEV trials: store their EER threshold in the model folder
        target_false_accept_rate: 0.01   # optional, with calibrate_threshold: that rate's threshold instead

Paths (`source`, `root`, `trials`) may hold `${VAR}` or `${VAR:-default}`; relative paths resolve
against the folder of the YAML file (training_mt2kd.yaml_config).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_mt2kd.data import CorpusSpec
from training_mt2kd.tasks import get_task
from training_mt2kd.yaml_config import read_mapping, resolve_config_path

CTC_DECODING = "ctc_greedy"
DECODING_METHODS = tuple(method for methods in get_task("asr").decodings.values() for method in methods)


@dataclass
class EvaluationSpec:
    """One entry of the config's `evaluations`: a task on a dataset (see the module docstring)."""

    task: str
    dataset: str
    dataset_config: str | None = None
    split: str = "test"
    source: str | None = None
    root: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    def corpus_spec(self) -> CorpusSpec:
        """The corpus to load: every example kept (no duration filter), roles named as in `columns`."""
        role = get_task(self.task).label_role
        columns = self.columns or {"audio": "audio", role: role}
        return CorpusSpec(
            name=self.dataset,
            source=self.source or self.dataset,
            config=self.dataset_config,
            split=self.split,
            columns=columns,
            task=self.task,
            root=self.root,
            min_duration_s=None,
            max_duration_s=None,
        )

    def result(
        self,
        metric: str,
        value: float,
        decoding: str | None = None,
        p_target: float | None = None,
        num_examples: int | None = None,
    ) -> dict[str, Any]:
        """One entry of the output's `results`, keys in the agreed order; None details are left out."""
        entry: dict[str, Any] = {
            "task": self.task,
            "dataset": self.dataset,
            "dataset_config": self.dataset_config,
            "split": self.split,
        }
        if decoding is not None:
            entry["decoding"] = decoding
        entry["metric"] = metric
        if p_target is not None:
            entry["p_target"] = float(p_target)
        entry["value"] = float(value)
        if num_examples is not None:
            entry["num_examples"] = int(num_examples)
        return entry


@dataclass
class AsrSpec(EvaluationSpec):
    """WER with each of `decoding` (empty = the model's greedy methods)."""

    decoding: list[str] = field(default_factory=list)
    beam_size: int = 4


@dataclass
class TaggingSpec(EvaluationSpec):
    """Macro mAP over the model's `id2label`; the labels column holds tag names (";"-joined or a list)."""


@dataclass
class SpeakerSpec(EvaluationSpec):
    """EER and minDCF on `trials` (paths under `root`), or on every pair of a speaker-labelled corpus."""

    trials: str | None = None
    p_targets: list[float] = field(default_factory=lambda: [0.01, 0.05])
    # Store these trials' decision threshold in the model folder (training_mt2kd.evaluation.threshold).
    calibrate_threshold: bool = False
    target_false_accept_rate: float | None = None


SPEC_CLASSES: dict[str, type[EvaluationSpec]] = {"asr": AsrSpec, "tagging": TaggingSpec, "speaker": SpeakerSpec}


@dataclass
class EvaluationConfig:
    """What to evaluate (`evaluations`) and how to batch it."""

    evaluations: list[EvaluationSpec]
    batch_duration_s: float = 200.0
    num_workers: int = 0


def load_evaluation_config(path: str | os.PathLike) -> EvaluationConfig:
    """Read and check an evaluation YAML file (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"evaluation config {path} does not exist; pass a YAML file such as training/configs/eval_tiny.yaml"
        )
    values = read_mapping(path, "evaluation config")
    return evaluation_config_from_dict(values, path.resolve().parent, where=str(path))


def evaluation_config_from_dict(values: Any, config_dir: Path, where: str = "config") -> EvaluationConfig:
    """Check `values` (a parsed YAML mapping) and resolve its local paths against `config_dir`."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping with an 'evaluations' list; got {type(values).__name__}")
    _reject_unknown_keys(values, {config_field.name for config_field in dataclasses.fields(EvaluationConfig)}, where)
    entries = values.get("evaluations")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where}: 'evaluations' must be a non-empty list of {{task, dataset, ...}} entries")
    specs = [
        _spec_from_dict(entry, config_dir, f"{where}: evaluations[{index}]") for index, entry in enumerate(entries)
    ]
    config = EvaluationConfig(
        specs,
        batch_duration_s=float(values.get("batch_duration_s", EvaluationConfig.batch_duration_s)),
        num_workers=int(values.get("num_workers", EvaluationConfig.num_workers)),
    )
    check_batch_duration(config.batch_duration_s)
    if config.num_workers < 0:
        raise ValueError(f"{where}: num_workers must be >= 0; got {config.num_workers}")
    return config


def check_batch_duration(batch_duration_s: float) -> None:
    if not (batch_duration_s > 0 and math.isfinite(batch_duration_s)):
        raise ValueError(f"batch_duration_s must be a positive number of seconds; got {batch_duration_s}")


def _spec_from_dict(entry: Any, config_dir: Path, where: str) -> EvaluationSpec:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping such as {{task: asr, dataset: ...}}; got {entry!r}")
    task = entry.get("task")
    if task not in SPEC_CLASSES:
        raise ValueError(f"{where}: task {task!r} is not one of {list(SPEC_CLASSES)}")
    spec_class = SPEC_CLASSES[task]
    _reject_unknown_keys(entry, {spec_field.name for spec_field in dataclasses.fields(spec_class)}, f"{where} ({task})")
    if not isinstance(entry.get("dataset"), str) or not entry["dataset"]:
        raise ValueError(f"{where}: 'dataset' (the reported name, or the Hub id when there is no 'source') is required")
    values = dict(entry)
    for key in ("source", "root", "trials"):
        if values.get(key) is not None:
            values[key] = resolve_config_path(values[key], config_dir, f"{where}.{key}")
    if values.get("columns") is not None and not isinstance(values["columns"], dict):
        raise ValueError(f"{where}.columns: expected a mapping role -> column name; got {values['columns']!r}")
    spec = spec_class(**{key: value for key, value in values.items() if value is not None})
    if isinstance(spec, AsrSpec):
        if not isinstance(spec.decoding, list) or any(method not in DECODING_METHODS for method in spec.decoding):
            raise ValueError(f"{where}.decoding: {spec.decoding!r} must be a list drawn from {list(DECODING_METHODS)}")
        if not (isinstance(spec.beam_size, int) and spec.beam_size >= 1):
            raise ValueError(f"{where}.beam_size must be a positive integer; got {spec.beam_size!r}")
    if isinstance(spec, SpeakerSpec):
        if spec.trials is not None and spec.source is not None:
            raise ValueError(
                f"{where}: give either 'trials' (with 'root') or a 'source' corpus with a speaker column, not both"
            )
        if (
            not isinstance(spec.p_targets, list)
            or not spec.p_targets
            or any(not (isinstance(p_target, (int, float)) and 0 < p_target < 1) for p_target in spec.p_targets)
        ):
            raise ValueError(f"{where}.p_targets must be a non-empty list of numbers in (0, 1); got {spec.p_targets!r}")
        if not isinstance(spec.calibrate_threshold, bool):
            raise ValueError(f"{where}.calibrate_threshold must be true or false; got {spec.calibrate_threshold!r}")
        target = spec.target_false_accept_rate
        if target is not None and not (spec.calibrate_threshold and isinstance(target, float) and 0 < target < 1):
            raise ValueError(
                f"{where}.target_false_accept_rate must be a fraction in (0, 1) such as 0.01, given with "
                f"calibrate_threshold: true; got {target!r}"
            )
    if not (isinstance(spec, SpeakerSpec) and spec.trials is not None):
        spec.corpus_spec()  # checks columns and roles now rather than after loading a model
    return spec


def _reject_unknown_keys(values: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
