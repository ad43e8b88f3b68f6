"""Evaluate an MT2KD model folder with the paper's protocols: WER (ASR), macro mAP (audio tagging),
EER and minDCF with cosine scoring (speaker verification).

    python training/evaluate.py --model DIR --config CONFIG.yaml --output results.json \\
        [--device cpu|cuda] [--batch_duration_s S]

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

Paths (`source`, `root`, `trials`) may hold `${VAR}` or `${VAR:-default}`; relative paths resolve
against the folder of the YAML file. Audio is never dropped: a file that cannot be decoded stops the
run with its id, as do tag names missing from the model's `id2label`.

Output JSON: {"model": DIR, "results": [...]} with one entry per metric:
    asr      {task, dataset, dataset_config, split, decoding, metric: "wer", value (%), num_examples}
    tagging  {task, dataset, dataset_config, split, metric: "map", value (%), num_examples}
    speaker  {task, dataset, dataset_config, split, metric: "eer", value (%), num_examples (trials)}
             {task, dataset, dataset_config, split, metric: "min_dcf", p_target, value}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDPreTrainedModel,
)
from modeling_mt2kd.decoding import ctc_greedy_decode
from modeling_mt2kd.modeling_mt2kd import decode_transducer
from processing_mt2kd import MT2KDFeatureExtractor, MT2KDTokenizer
from training_mt2kd.data import AudioCollator, CorpusSpec, LabelSet, load_corpus
from training_mt2kd.data.corpus import TASK_ROLES, probe_duration_s, resolve_audio_path
from training_mt2kd.data.sampler import pack_by_duration
from training_mt2kd.evaluation.metrics import (
    cosine_scores,
    equal_error_rate,
    mean_average_precision,
    min_dcf,
    read_trial_list,
    word_error_rate,
)

logger = logging.getLogger(__name__)

TASKS = ("asr", "tagging", "speaker")
CTC_DECODING = "ctc_greedy"
TRANSDUCER_DECODINGS = ("greedy_search", "modified_beam_search")
DECODING_METHODS = (CTC_DECODING, *TRANSDUCER_DECODINGS)
MODEL_CLASSES: dict[str, type[MT2KDPreTrainedModel]] = {
    model_class.__name__: model_class
    for model_class in (MT2KDForMultiTask, MT2KDForCTC, MT2KDForRNNT, MT2KDForAudioClassification, MT2KDForXVector)
}


# ---------------------------------------------------------------------------------------------
# Configuration


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
        columns = self.columns or {"audio": "audio", TASK_ROLES[self.task]: TASK_ROLES[self.task]}
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


SPEC_CLASSES: dict[str, type[EvaluationSpec]] = {"asr": AsrSpec, "tagging": TaggingSpec, "speaker": SpeakerSpec}


@dataclass
class EvaluationConfig:
    """What to evaluate (`evaluations`) and how to batch it."""

    evaluations: list[EvaluationSpec]
    batch_duration_s: float = 200.0
    num_workers: int = 0


_ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_environment(value: str, where: str) -> str:
    """Replace `${VAR}` and `${VAR:-default}` (default when VAR is unset or empty) in `value`."""

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if os.environ.get(name):
            return os.environ[name]
        if default is not None:
            return default
        raise ValueError(f"{where}: environment variable {name} is not set; set it or write ${{{name}:-default}}")

    return _ENV_REFERENCE.sub(substitute, value)


def resolve_config_path(value: str, config_dir: Path, where: str) -> str:
    """An existing local path from a config value: environment expanded, relative to `config_dir`."""
    path = Path(expand_environment(str(value), where)).expanduser()
    if not path.is_absolute():
        path = config_dir / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise FileNotFoundError(
            f"{where}: {path} does not exist; relative paths resolve against {config_dir} (the config's folder), "
            "or use an absolute path or ${VAR}"
        )
    return str(path)


def load_evaluation_config(path: str | os.PathLike) -> EvaluationConfig:
    """Read and check an evaluation YAML file (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"evaluation config {path} does not exist; pass a YAML file such as training/configs/eval_tiny.yaml"
        )
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
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
        raise ValueError(f"{where}: task {task!r} is not one of {list(TASKS)}")
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
    if not (isinstance(spec, SpeakerSpec) and spec.trials is not None):
        spec.corpus_spec()  # checks columns and roles now rather than after loading a model
    return spec


def _reject_unknown_keys(values: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")


# ---------------------------------------------------------------------------------------------
# Model


@dataclass
class HeadOutputs:
    """What evaluation reads from one encoder pass over a batch; None where the model lacks the head.

    frame_lengths: (batch,) valid 25 Hz encoder frames. ctc_logits: (batch, frames, vocab).
    encoder_out: (batch, frames, hidden), the transducer's input. tagging_logits: (batch, num_labels).
    speaker_embeddings: (batch, speaker_embedding_dim).
    """

    frame_lengths: torch.Tensor | None = None
    ctc_logits: torch.Tensor | None = None
    encoder_out: torch.Tensor | None = None
    tagging_logits: torch.Tensor | None = None
    speaker_embeddings: torch.Tensor | None = None


class EvaluatedModel:
    """An MT2KD model with its feature extractor and tokenizer, read the same way whatever its head class."""

    def __init__(
        self,
        model: MT2KDPreTrainedModel,
        feature_extractor: MT2KDFeatureExtractor,
        tokenizer: MT2KDTokenizer | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(model, tuple(MODEL_CLASSES.values())):
            raise TypeError(f"cannot evaluate a {type(model).__name__}; expected one of {sorted(MODEL_CLASSES)}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> EvaluatedModel:
        """Load the class named in the folder's config (`architectures`), its feature extractor and,
        when present, its tokenizer (`bpe.model`), in float32."""
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} holds no config.json; pass a folder written by save_pretrained")
        architectures = MT2KDConfig.from_pretrained(folder).architectures or []
        model_class = next((MODEL_CLASSES[name] for name in architectures if name in MODEL_CLASSES), None)
        if model_class is None:
            raise ValueError(
                f"{folder} holds a {architectures or 'model of unknown class'}; evaluation needs one of "
                f"{sorted(MODEL_CLASSES)} (a stage-2 or single-head model saved with save_pretrained)"
            )
        if not (folder / "preprocessor_config.json").is_file():
            raise FileNotFoundError(
                f"{folder} holds no preprocessor_config.json; save the feature extractor with the model: "
                f"MT2KDFeatureExtractor().save_pretrained({str(folder)!r})"
            )
        feature_extractor = MT2KDFeatureExtractor.from_pretrained(folder)
        tokenizer = MT2KDTokenizer.from_pretrained(folder) if (folder / "bpe.model").is_file() else None
        model = model_class.from_pretrained(folder, dtype=torch.float32)
        return cls(model, feature_extractor, tokenizer, device)

    @property
    def decoding_methods(self) -> tuple[str, ...]:
        """The ASR decoding methods this model's heads allow."""
        methods = ()
        if getattr(self.model, "ctc_head", None) is not None:
            methods += (CTC_DECODING,)
        if getattr(self.model, "transducer", None) is not None:
            methods += TRANSDUCER_DECODINGS
        return methods

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this model has heads for."""
        has_head = {
            "asr": bool(self.decoding_methods),
            "tagging": getattr(self.model, "tagging_head", None) is not None,
            "speaker": getattr(self.model, "speaker_head", None) is not None,
        }
        return tuple(task for task in TASKS if has_head[task])

    def asr_decoding(self, spec: AsrSpec) -> list[str]:
        """The methods `spec` decodes with: its `decoding`, else this model's greedy methods."""
        return spec.decoding or [method for method in self.decoding_methods if method != "modified_beam_search"]

    def check_can_evaluate(self, spec: EvaluationSpec) -> None:
        """Raise a ValueError naming what `spec` needs and this model lacks: a head, a decoding, the tokenizer."""
        name = type(self.model).__name__
        if spec.task not in self.tasks:
            raise ValueError(
                f"{spec.task} on {spec.dataset}: the {name} has no head for {spec.task!r} (it evaluates "
                f"{list(self.tasks)}); remove the entry or evaluate a model that has the head"
            )
        if isinstance(spec, AsrSpec):
            unsupported = [method for method in self.asr_decoding(spec) if method not in self.decoding_methods]
            if unsupported:
                raise ValueError(
                    f"asr on {spec.dataset}: the {name} cannot decode with {unsupported}; it supports "
                    f"{list(self.decoding_methods)}"
                )
            if self.tokenizer is None:
                raise ValueError(
                    f"asr on {spec.dataset}: the model has no tokenizer; save it (bpe.model) in the model folder"
                )

    @torch.inference_mode()
    def run(self, input_features: torch.Tensor, attention_mask: torch.Tensor) -> HeadOutputs:
        """One encoder pass over (batch, frames, 80) fbank with its (batch, frames) mask."""
        input_features = input_features.to(self.device, torch.float32)
        attention_mask = attention_mask.to(self.device)
        model = self.model
        if isinstance(model, MT2KDForCTC):
            # MT2KDForCTC's output carries no frame mask, so its encoder and head are called in turn.
            encoded = model.mt2kd(input_features, attention_mask=attention_mask)
            return HeadOutputs(encoded.attention_mask.sum(dim=1), ctc_logits=model.ctc_head(encoded.last_hidden_state))
        output = model(input_features=input_features, attention_mask=attention_mask)
        if isinstance(model, MT2KDForMultiTask):
            return HeadOutputs(
                frame_lengths=output.attention_mask.sum(dim=1),
                ctc_logits=output.ctc_logits,
                encoder_out=output.last_hidden_state if model.transducer is not None else None,
                tagging_logits=output.tagging_logits,
                speaker_embeddings=output.speaker_embeddings,
            )
        if isinstance(model, MT2KDForRNNT):
            return HeadOutputs(frame_lengths=output.attention_mask.sum(dim=1), encoder_out=output.encoder_out)
        if isinstance(model, MT2KDForAudioClassification):
            return HeadOutputs(tagging_logits=output.logits)
        return HeadOutputs(speaker_embeddings=output.embeddings)

    @torch.inference_mode()
    def transcribe(self, outputs: HeadOutputs, decoding: str, beam_size: int = 4) -> list[str]:
        """Transcripts of a batch decoded with `decoding` (one of DECODING_METHODS)."""
        if decoding == CTC_DECODING:
            decoded = ctc_greedy_decode(outputs.ctc_logits, outputs.frame_lengths, self.model.config.blank_id)
        else:
            decoded = decode_transducer(
                self.model.transducer, outputs.encoder_out, outputs.frame_lengths, decoding, beam_size
            )
        # The searches return final tokens (repeats of CTC already merged), so nothing is grouped here.
        return [self.tokenizer.decode(sequence.tokens, group_tokens=False) for sequence in decoded]


# ---------------------------------------------------------------------------------------------
# Running a model over examples


class UnusableExampleError(ValueError):
    """An evaluation example that cannot be scored as written (unreadable audio, unknown tag name)."""


def batches_by_duration(
    model: EvaluatedModel,
    examples: Sequence[dict[str, Any]],
    task: str,
    batch_duration_s: float,
    num_workers: int = 0,
    label_set: LabelSet | None = None,
    description: str = "",
) -> Iterator[dict[str, Any]]:
    """Collated batches (see `AudioCollator`) of every example, longest first, each holding at most
    `batch_duration_s` seconds of audio (or one longer example).

    `examples` are role-named (`audio`, `id`, `duration_s`, and the task's role), e.g. a `load_corpus`
    dataset. Raises `UnusableExampleError` for any example the collator would leave out or any tag name
    missing from `label_set`, since a skipped example would change the metric.
    """
    check_batch_duration(batch_duration_s)
    durations = np.asarray([float(duration) for duration in _column(examples, "duration_s")], dtype=np.float64)
    unreadable = np.flatnonzero(~np.isfinite(durations))
    if unreadable.size:
        ids = [str(_column(examples, "id")[index]) for index in unreadable[:5]]
        raise UnusableExampleError(
            f"{unreadable.size} example(s) of {description or task} cannot be read, e.g. {ids}; fix or remove them"
        )
    order = np.argsort(-durations, kind="stable")
    collator = AudioCollator(
        sample_rate=model.feature_extractor.sampling_rate,
        label_set=label_set,
        feature_extractor=model.feature_extractor,
        max_duration_s=None,
        tasks=(task,),
    )
    batches = pack_by_duration(order, durations, batch_duration_s)
    loader = DataLoader(examples, batch_sampler=batches, collate_fn=collator, num_workers=num_workers)
    for batch in tqdm(loader, total=len(batches), desc=description or task, unit="batch", disable=None):
        if batch["health_events"]:
            events = ", ".join(f"{example_id} ({reason})" for reason, example_id in batch["health_events"][:5])
            raise UnusableExampleError(
                f"{description or task}: {len(batch['health_events'])} example(s) cannot be scored as written: "
                f"{events}. Fix or remove them (tag names must be the model's id2label names)"
            )
        yield batch


def _column(examples: Sequence[dict[str, Any]], name: str) -> list[Any]:
    if hasattr(examples, "column_names"):  # a datasets.Dataset reads one column without decoding rows
        return examples[name]
    return [example[name] for example in examples]


def transcribe_corpus(
    model: EvaluatedModel,
    examples: Sequence[dict[str, Any]],
    decoding: Sequence[str],
    beam_size: int = 4,
    batch_duration_s: float = 200.0,
    num_workers: int = 0,
    description: str = "",
) -> tuple[list[str], dict[str, list[str]]]:
    """(references, {decoding method: hypotheses}), in the same order; one encoder pass per batch
    serves every decoding method."""
    references: list[str] = []
    hypotheses: dict[str, list[str]] = {method: [] for method in decoding}
    for batch in batches_by_duration(model, examples, "asr", batch_duration_s, num_workers, description=description):
        outputs = model.run(batch["input_features"], batch["attention_mask"])
        references += batch["text"]
        for method in decoding:
            hypotheses[method] += model.transcribe(outputs, method, beam_size)
    return references, hypotheses


def tag_corpus(
    model: EvaluatedModel,
    examples: Sequence[dict[str, Any]],
    batch_duration_s: float = 200.0,
    num_workers: int = 0,
    description: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, targets), both (num_clips, num_labels) over the model's `id2label`:
    sigmoid of the tagging logits, and the multi-hot tags of each clip."""
    label_set = LabelSet(model.model.config.id2label)
    scores, targets = [], []
    batches = batches_by_duration(model, examples, "tagging", batch_duration_s, num_workers, label_set, description)
    for batch in batches:
        outputs = model.run(batch["input_features"], batch["attention_mask"])
        scores.append(outputs.tagging_logits.float().sigmoid().cpu().numpy())
        targets.append(batch["labels"].numpy())
    return np.concatenate(scores), np.concatenate(targets)


def embed_examples(
    model: EvaluatedModel,
    examples: Sequence[dict[str, Any]],
    batch_duration_s: float = 200.0,
    num_workers: int = 0,
    description: str = "",
) -> dict[str, torch.Tensor]:
    """Speaker embedding (speaker_embedding_dim,) of each example, by example id."""
    embeddings: dict[str, torch.Tensor] = {}
    for batch in batches_by_duration(
        model, examples, "speaker", batch_duration_s, num_workers, description=description
    ):
        outputs = model.run(batch["input_features"], batch["attention_mask"])
        embeddings.update(zip(batch["ids"], outputs.speaker_embeddings.float().cpu(), strict=True))
    return embeddings


# ---------------------------------------------------------------------------------------------
# Metrics per task


def evaluate_asr(
    model: EvaluatedModel, spec: AsrSpec, batch_duration_s: float = 200.0, num_workers: int = 0
) -> list[dict[str, Any]]:
    """WER (percent, with `training_mt2kd.evaluation.metrics.TextNormalizer`) for each decoding method."""
    model.check_can_evaluate(spec)
    decoding = model.asr_decoding(spec)
    corpus = load_corpus(spec.corpus_spec())
    references, hypotheses = transcribe_corpus(
        model, corpus, decoding, spec.beam_size, batch_duration_s, num_workers, description=f"asr {spec.dataset}"
    )
    return [
        spec.result(
            "wer",
            100.0 * word_error_rate(references, hypotheses[method]).wer,
            decoding=method,
            num_examples=len(references),
        )
        for method in decoding
    ]


def evaluate_tagging(
    model: EvaluatedModel, spec: TaggingSpec, batch_duration_s: float = 200.0, num_workers: int = 0
) -> list[dict[str, Any]]:
    """Macro mAP (percent) over the model's labels; classes without a positive clip are skipped."""
    model.check_can_evaluate(spec)
    corpus = load_corpus(spec.corpus_spec())
    scores, targets = tag_corpus(model, corpus, batch_duration_s, num_workers, description=f"tagging {spec.dataset}")
    result = mean_average_precision(scores, targets)
    logger.info("tagging %s: mAP over the %d classes with positives", spec.dataset, result.num_classes_scored)
    return [spec.result("map", 100.0 * result.mean_average_precision, num_examples=len(scores))]


def evaluate_speaker(
    model: EvaluatedModel, spec: SpeakerSpec, batch_duration_s: float = 200.0, num_workers: int = 0
) -> list[dict[str, Any]]:
    """EER (percent) and minDCF at each `p_target`, cosine scoring, one embedding per distinct file."""
    model.check_can_evaluate(spec)
    description = f"speaker {spec.dataset}"
    if spec.trials is not None:
        trials = read_trial_list(spec.trials)
        names = sorted({trial.enrollment for trial in trials} | {trial.test for trial in trials})
        examples = _trial_examples(names, spec)
        embeddings = embed_examples(model, examples, batch_duration_s, num_workers, description)
        enrollment = torch.stack([embeddings[trial.enrollment] for trial in trials])
        test = torch.stack([embeddings[trial.test] for trial in trials])
        labels = np.asarray([trial.is_target for trial in trials])
        scores = cosine_scores(enrollment, test).numpy()
    else:
        corpus = load_corpus(spec.corpus_spec())
        speakers = np.asarray(
            [
                _speaker_name(speaker, example_id)
                for speaker, example_id in zip(corpus["speaker"], corpus["id"], strict=True)
            ]
        )
        embeddings = embed_examples(model, corpus, batch_duration_s, num_workers, description)
        # Every pair once: cosine similarities as one product of unit vectors, then its upper triangle.
        unit = torch.nn.functional.normalize(
            torch.stack([embeddings[example_id] for example_id in corpus["id"]]), dim=1
        )
        first, second = torch.triu_indices(len(speakers), len(speakers), offset=1)
        scores = (unit @ unit.T)[first, second].numpy()
        labels = speakers[first.numpy()] == speakers[second.numpy()]
    results = [spec.result("eer", 100.0 * equal_error_rate(scores, labels), num_examples=len(scores))]
    for p_target in spec.p_targets:
        results.append(spec.result("min_dcf", min_dcf(scores, labels, p_target), p_target=p_target))
    return results


def _speaker_name(speaker: Any, example_id: str) -> str:
    if speaker is None or str(speaker) == "":
        raise UnusableExampleError(f"example {example_id} has no speaker; every pair needs both speakers")
    return str(speaker)


def _trial_examples(names: list[str], spec: SpeakerSpec) -> list[dict[str, Any]]:
    """Role-named examples for the files a trial list names (under `spec.root`, else the list's folder)."""
    root = os.path.normpath(os.path.abspath(spec.root or os.path.dirname(spec.trials)))
    paths = [resolve_audio_path(name, root, allow_absolute_paths=False, where=spec.trials) for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(names)} files named in {spec.trials} are not under {root}, "
            f"e.g. {missing[:3]}; set 'root' to the folder that the trial list's paths are relative to"
        )
    return [
        {"audio": {"bytes": None, "path": path}, "id": name, "duration_s": probe_duration_s(None, path)}
        for name, path in zip(names, paths, strict=True)
    ]


TASK_EVALUATORS = {"asr": evaluate_asr, "tagging": evaluate_tagging, "speaker": evaluate_speaker}


def run_evaluations(
    model: EvaluatedModel, config: EvaluationConfig, batch_duration_s: float | None = None
) -> list[dict[str, Any]]:
    """Every entry of `config`, in order; the results of all of them (schema in the module docstring)."""
    batch_duration_s = config.batch_duration_s if batch_duration_s is None else batch_duration_s
    check_batch_duration(batch_duration_s)
    for spec in config.evaluations:  # before any data is read
        model.check_can_evaluate(spec)
    results = []
    for spec in config.evaluations:
        results += TASK_EVALUATORS[spec.task](model, spec, batch_duration_s, config.num_workers)
    return results


def evaluate(
    model_dir: str | os.PathLike,
    config: EvaluationConfig | str | os.PathLike,
    device: str | None = None,
    batch_duration_s: float | None = None,
) -> dict[str, Any]:
    """Evaluate the model folder `model_dir` on a config (object or YAML path); returns the results JSON."""
    if not isinstance(config, EvaluationConfig):
        config = load_evaluation_config(config)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = EvaluatedModel.from_folder(model_dir, device)
    return {"model": str(model_dir), "results": run_evaluations(model, config, batch_duration_s)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model folder (save_pretrained, with its feature extractor)")
    parser.add_argument("--config", required=True, help="evaluation YAML (e.g. training/configs/eval_paper.yaml)")
    parser.add_argument("--output", required=True, help="results JSON to write")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--batch_duration_s", type=float, help="seconds of audio per batch (overrides the config)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        config = load_evaluation_config(args.config)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    results = evaluate(args.model, config, args.device, args.batch_duration_s)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for entry in results["results"]:
        details = entry.get("decoding") or entry.get("p_target") or ""
        print(
            f"{entry['task']:8} {entry['dataset']} {entry['split']} {entry['metric']} {details}: {entry['value']:.3f}"
        )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
