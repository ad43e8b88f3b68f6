"""Run configuration of kd.py (stage 1) and finetune.py (stage 2): YAML files with documented options.

A YAML file has the sections `model`, `data`, `augment`, `teachers` (stage 1), `optim` and
`training`; `base: OTHER.yaml` starts from another file (training_mt2kd.yaml_config reads them).
Any option can be overridden on the command line with `--set section.option=value` (value parsed as
YAML). `--help` lists every option with its meaning.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_mt2kd.data.corpus import CorpusSpec
from training_mt2kd.yaml_config import apply_override, read_config


def option(default: Any, help: str, **kwargs) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with its documentation."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class ModelOptions:
    preset: str = option("mt2kd-tiny", "MT2KD config preset (mt2kd-66m, mt2kd-tiny) or path to a config.json.")
    overrides: dict = option({}, "MT2KDConfig fields to override, e.g. {num_speakers: 1211}.")
    tokenizer: str | None = option(
        None, "Stage 2: tokenizer folder or icefall lang folder with bpe.model (None = train BPE on the ASR text)."
    )
    init_from: str | None = option(
        None, "Stage 2: stage-1 model folder whose encoder, tagging and speaker heads carry over (None = from scratch)."
    )


@dataclass
class DataOptions:
    train: list = option([], "Training corpora (list of corpus entries, see below).")
    valid: list = option([], "Validation corpora (losses only).")
    max_batch_duration_s: float = option(300.0, "Total seconds of audio per batch (per process).")
    min_duration_s: float = option(1.0, "Shorter utterances are skipped.")
    max_duration_s: float = option(30.0, "Longer utterances are skipped.")
    num_buckets: int = option(10, "Length buckets of the batch sampler.")
    stream_buffer_size: int = option(2000, "Streaming corpora: examples read, sorted by length and batched at a time.")
    steps_per_epoch: int | None = option(
        None, "Batches per epoch of the corpus mixture (default: all batches of the map-style corpora; required "
        "when a training corpus streams)."
    )
    num_workers: int = option(0, "DataLoader worker processes.")
    label_names: str | None = option(None, "File with one tagging label per line (default: the model's id2label).")


@dataclass
class AugmentOptions:
    spec_augment: bool = option(True, "SpecAugment on the student's features (teachers see clean audio).")
    noise: dict | None = option(None, "Noise corpus (corpus options) mixed into the student's waveforms.")
    snr_db: list = option([10.0, 20.0], "SNR range in dB for noise mixing.")
    noise_probability: float = option(0.5, "Share of utterances that get noise.")


@dataclass
class TeacherOptions:
    whisper: dict | None = option(None, "{name_or_path, layer}: Whisper encoder teacher (ASR target).")
    tagging: dict | None = option(None, "{name_or_path}: AutoModelForAudioClassification teacher.")
    speaker: dict | None = option(None, "{name_or_path, kind: xvector|speechbrain-ecapa|resemblyzer}: speaker teacher.")
    cache_dir: str | None = option(None, "Read targets from this cache (extracting missing ones first); None = on the fly.")


@dataclass
class OptimOptions:
    name: str = option("scaled_adam", "scaled_adam (the paper's) or adamw.")
    lr: float = option(0.045, "Base learning rate (0.045 for ScaledAdam, ~1e-3 for AdamW).")
    weight_decay: float = option(0.0, "AdamW weight decay (ScaledAdam has none).")
    lr_batches: float = option(7500.0, "Eden: batches over which the rate decays.")
    lr_epochs: float = option(3.5, "Eden: epochs over which the rate decays.")
    warmup_batches: float = option(500.0, "Eden: linear warm-up batches.")
    clip_grad_norm: float | None = option(5.0, "AdamW only: clip the gradient norm (ScaledAdam clips itself).")
    lr_scales: dict = option({}, "Parameter-name prefix → learning-rate multiplier (0 freezes), e.g. {mt2kd: 0.5}.")


@dataclass
class TrainingOptions:
    output_dir: str = option("runs/mt2kd", "Checkpoints, logs and the final model folder.")
    seed: int = option(42, "Seed for weights, sampling and augmentation.")
    max_steps: int = option(1000, "Optimiser steps to run.")
    gradient_accumulation_steps: int = option(1, "Batches per optimiser step.")
    mixed_precision: str = option("no", "no | fp16 | bf16.")
    log_every_steps: int = option(10, "Steps between log lines and tensorboard points.")
    save_every_steps: int = option(200, "Steps between checkpoints (save_state).")
    keep_checkpoints: int = option(2, "Checkpoints kept on disk.")
    valid_every_steps: int = option(0, "Steps between validation passes (0 = only at the end).")
    average_period: int = option(100, "Batches between updates of the running model average (0 = off).")
    batch_count_offset: float = option(
        0.0, "Added to the step to give the encoder's regulariser batch count (stage 2 uses a large value)."
    )
    max_nonfinite_steps: int = option(20, "Stop after this many consecutive steps with a non-finite loss or gradient.")
    push_to_hub: bool = option(False, "Upload the final model folder to the Hub.")
    hub_model_id: str | None = option(None, "Hub repository for --push_to_hub.")
    hub_private: bool = option(False, "Create the Hub repository as private.")


@dataclass
class RunConfig:
    model: ModelOptions = field(default_factory=ModelOptions)
    data: DataOptions = field(default_factory=DataOptions)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    teachers: TeacherOptions = field(default_factory=TeacherOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    training: TrainingOptions = field(default_factory=TrainingOptions)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(RunConfig)}


def _section_from_dict(section_class, values: dict, where: str):
    known = {f.name for f in dataclasses.fields(section_class)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} in {where}; known: {sorted(known)}")
    return section_class(**values)


def config_from_dict(values: dict, where: str = "config") -> RunConfig:
    unknown = set(values) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)} in {where}; known: {sorted(SECTIONS)}")
    sections = {name: _section_from_dict(type(factory()), values.get(name) or {}, f"{where}:{name}") for name, factory in SECTIONS.items()}
    return RunConfig(**sections)


def options_help() -> str:
    """Every option of every section with its default and meaning (for --help)."""
    lines = ["configuration options (YAML sections; override with --set section.option=value):"]
    for section_name, factory in SECTIONS.items():
        lines.append(f"\n  {section_name}:")
        for f in dataclasses.fields(type(factory())):
            default = getattr(factory(), f.name)
            text = textwrap.fill(f.metadata["help"], width=88, initial_indent=" " * 8, subsequent_indent=" " * 8)
            lines.append(f"    {f.name} (default: {default!r})\n{text}")
    lines.append(
        "\n  corpus entries (data.train, data.valid, augment.noise; training_mt2kd.data.CorpusSpec; task defaults to "
        "distill, the duration bounds to data.min_duration_s / data.max_duration_s):"
    )
    for f in dataclasses.fields(CorpusSpec):
        lines.append(f"    {f.name}: {f.metadata['help']}")
    return "\n".join(lines)


def build_argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, epilog=options_help(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML run configuration (see training/configs/).")
    parser.add_argument("--output_dir", help="Overrides training.output_dir.")
    parser.add_argument("--resume_from", help="Checkpoint folder, or an output_dir to resume from its latest checkpoint.")
    parser.add_argument("--push_to_hub", action="store_true", help="Upload the final model to the Hub.")
    parser.add_argument("--hub_model_id", help="Hub repository id for --push_to_hub.")
    parser.add_argument("--max_steps", type=int, help="Overrides training.max_steps.")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.OPTION=VALUE", help="Override any option.")
    return parser


def load_run_config(args: argparse.Namespace) -> RunConfig:
    path = Path(args.config)
    values = read_config(path, "run configuration")
    for assignment in args.set:
        apply_override(values, assignment)
    for flag, (section, name) in {
        "output_dir": ("training", "output_dir"),
        "hub_model_id": ("training", "hub_model_id"),
        "max_steps": ("training", "max_steps"),
    }.items():
        if getattr(args, flag, None) is not None:
            values.setdefault(section, {})[name] = getattr(args, flag)
    if getattr(args, "push_to_hub", False):
        values.setdefault("training", {})["push_to_hub"] = True
    config = config_from_dict(values, where=str(path))
    if config.training.push_to_hub and not config.training.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id (or training.hub_model_id)")
    return config
