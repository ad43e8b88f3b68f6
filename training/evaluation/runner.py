"""Running a model folder over evaluation corpora: one forward pass per batch, the predictions read
from the model's output fields, and the metric of each task (WER, macro mAP, EER / minDCF).

The model is loaded as the class its config names (`architectures`, one of modeling_mt2kd's Auto
classes); what it can evaluate follows from its heads as the task table (training_mt2kd.tasks) lists
them, so single-head and multi-task models are read the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDPreTrainedModel
from modeling_mt2kd.decoding import ctc_greedy_decode
from modeling_mt2kd.lengths import encoder_output_lengths
from modeling_mt2kd.masks import mask_to_lengths
from modeling_mt2kd.modeling_mt2kd import decode_transducer
from modeling_mt2kd.registration import AUTO_MODEL_CLASSES
from processing_mt2kd import MT2KDFeatureExtractor, MT2KDTokenizer
from training_mt2kd.data import AudioCollator, LabelSet, load_corpus
from training_mt2kd.data.corpus import probe_duration_s, resolve_audio_path
from training_mt2kd.data.sampler import pack_by_duration
from training_mt2kd.evaluation.config import (
    CTC_DECODING,
    AsrSpec,
    EvaluationConfig,
    EvaluationSpec,
    SpeakerSpec,
    TaggingSpec,
    check_batch_duration,
    load_evaluation_config,
)
from training_mt2kd.evaluation.metrics import cosine_scores, load_metric, read_trial_list
from training_mt2kd.evaluation.threshold import store_evaluated_threshold, threshold_result
from training_mt2kd.tasks import get_task, tasks as task_rows

logger = logging.getLogger(__name__)

MODEL_CLASSES: dict[str, type[MT2KDPreTrainedModel]] = {
    model_class.__name__: model_class for auto_class, model_class in AUTO_MODEL_CLASSES.items() if auto_class != "AutoModel"
}
"""The classes with heads, from modeling's one table of Auto classes."""

# transformers' standard outputs call a single head's prediction `logits`; the output type says which.
STANDARD_LOGITS_FIELDS = {"CausalLMOutput": "ctc_logits", "SequenceClassifierOutput": "tagging_logits"}
PREDICTION_FIELDS = {
    "ctc_logits": ("ctc_logits",),
    "encoder_out": ("encoder_out", "last_hidden_state"),
    "tagging_logits": ("tagging_logits",),
    "speaker_embeddings": ("speaker_embeddings", "embeddings"),
}
"""Prediction → the output fields that may carry it, in order."""


@dataclass
class HeadOutputs:
    """What evaluation reads from one forward pass over a batch; None where the model lacks the head.

    frame_lengths: (batch,) valid 25 Hz encoder frames. ctc_logits: (batch, frames, vocab).
    encoder_out: (batch, frames, hidden), the transducer's input. tagging_logits: (batch, num_labels).
    speaker_embeddings: (batch, speaker_embedding_dim).
    """

    frame_lengths: torch.Tensor | None = None
    ctc_logits: torch.Tensor | None = None
    encoder_out: torch.Tensor | None = None
    tagging_logits: torch.Tensor | None = None
    speaker_embeddings: torch.Tensor | None = None

    @classmethod
    def from_output(cls, output: Any, input_lengths: torch.Tensor) -> HeadOutputs:
        """Read a model output's fields; frame lengths from its `attention_mask`, else from the
        (batch,) fbank `input_lengths` through the encoder's length arithmetic."""
        fields = {name: next((output.get(key) for key in keys if output.get(key) is not None), None)
                  for name, keys in PREDICTION_FIELDS.items()}
        kinds = [kind.__name__ for kind in type(output).__mro__]  # MT2KDForCTC's CTCOutput is a CausalLMOutput
        standard = next((STANDARD_LOGITS_FIELDS[kind] for kind in kinds if kind in STANDARD_LOGITS_FIELDS), None)
        if standard is not None:
            fields[standard] = output.logits
        mask = output.get("attention_mask")
        lengths = mask_to_lengths(mask) if mask is not None else encoder_output_lengths(input_lengths)
        return cls(frame_lengths=lengths, **fields)


class EvaluatedModel:
    """An MT2KD model with its feature extractor and tokenizer, read the same way whatever its head class."""

    def __init__(
        self,
        model: MT2KDPreTrainedModel,
        feature_extractor: MT2KDFeatureExtractor,
        tokenizer: MT2KDTokenizer | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not any(task.has_head(model) for task in task_rows()):
            raise TypeError(f"cannot evaluate a {type(model).__name__}: it has none of the task table's heads")
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
        return get_task("asr").model_decodings(self.model)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this model has heads for."""
        return tuple(task.name for task in task_rows() if task.has_head(self.model))

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
        """One forward pass over (batch, frames, 80) fbank with its (batch, frames) mask."""
        attention_mask = attention_mask.to(self.device)
        output = self.model(input_features=input_features.to(self.device, torch.float32), attention_mask=attention_mask)
        return HeadOutputs.from_output(output, mask_to_lengths(attention_mask))

    @torch.inference_mode()
    def transcribe(self, outputs: HeadOutputs, decoding: str, beam_size: int = 4) -> list[str]:
        """Transcripts of a batch decoded with `decoding` (one of the model's `decoding_methods`)."""
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
    """WER (percent, with `training_mt2kd.evaluation.metrics.TextNormalizer`; the packaged `mt2kd_wer` module) for
    each decoding method."""
    model.check_can_evaluate(spec)
    wer = load_metric("mt2kd_wer")
    decoding = model.asr_decoding(spec)
    corpus = load_corpus(spec.corpus_spec())
    references, hypotheses = transcribe_corpus(
        model, corpus, decoding, spec.beam_size, batch_duration_s, num_workers, description=f"asr {spec.dataset}"
    )
    return [
        spec.result(
            "wer",
            100.0 * wer.compute(predictions=hypotheses[method], references=references)["wer"],
            decoding=method,
            num_examples=len(references),
        )
        for method in decoding
    ]


def evaluate_tagging(
    model: EvaluatedModel, spec: TaggingSpec, batch_duration_s: float = 200.0, num_workers: int = 0
) -> list[dict[str, Any]]:
    """Macro mAP (percent, the packaged `mt2kd_map` module) over the model's labels; classes without a positive clip
    are skipped."""
    model.check_can_evaluate(spec)
    corpus = load_corpus(spec.corpus_spec())
    scores, targets = tag_corpus(model, corpus, batch_duration_s, num_workers, description=f"tagging {spec.dataset}")
    result = load_metric("mt2kd_map").compute(predictions=scores, references=targets)
    logger.info("tagging %s: mAP over the %d classes with positives", spec.dataset, result["num_classes_scored"])
    return [spec.result("map", 100.0 * result["mean_average_precision"], num_examples=len(scores))]


def evaluate_speaker(
    model: EvaluatedModel, spec: SpeakerSpec, batch_duration_s: float = 200.0, num_workers: int = 0
) -> list[dict[str, Any]]:
    """EER (percent) and minDCF at each `p_target` (the packaged `mt2kd_speaker_verification` module), cosine
    scoring, one embedding per distinct file."""
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
    p_targets = list(spec.p_targets)
    verification = load_metric("mt2kd_speaker_verification").compute(
        predictions=scores, references=labels, p_target=p_targets
    )
    results = [spec.result("eer", 100.0 * verification["eer"], num_examples=len(scores))]
    for p_target, cost in zip(p_targets, verification["min_dcf"], strict=True):
        results.append(spec.result("min_dcf", cost, p_target=p_target))
    if spec.calibrate_threshold:
        results.append(threshold_result(spec, scores, labels))
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
"""Each evaluated task's protocol (the task table's `metrics` name what each reports)."""


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
    results = run_evaluations(model, config, batch_duration_s)
    store_evaluated_threshold(model_dir, results)
    return {"model": str(model_dir), "results": results}


