"""The task table: one row per supervised task, read by the data, the recipe and the evaluation.

A row says, for one task, everything the code around the model needs to know:

    corpus column role   `label_role`      a corpus entry that trains the task maps this role
    collated batch key   `batch_key`       the collator encodes the role's values into it, with the
                                           task's vocabulary (tokenizer, LabelSet, SpeakerIndex, ...)
    model arguments      `label_argument`, `mask_argument`  of MT2KDForMultiTask.forward
    heads                `head_flags`      config booleans that build its heads (`use_*`), and the
                         `head_attributes` model attributes that hold them
    loss weights         `loss_weights`    config fields that weight its losses
    metrics, decodings   what evaluation reports (the first metric is the headline)
    vocabulary           `vocabulary_from_labels` builds it from the training label values (and
                         `class_count_field` receives its size), e.g. the speaker index; ASR's
                         tokenizer and tagging's label set come from the run and model config instead

Adding a task is one `Task` row (`register_task`) plus its head: a `TaskHead` subclass that the row
builds from the config when MT2KDForMultiTask has no attribute for it (the model builds it when the row is
registered first, so `from_pretrained` restores it; else `attach_task_heads`), whose loss
`forward_with_tasks` adds to the model's. docs/architecture.md walks through a gender head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from configuration_mt2kd import IGNORE_INDEX
from modeling_mt2kd.generation import CTC_DECODING_METHODS, TRANSDUCER_DECODING_METHODS
from modeling_mt2kd.heads.added import AddedHead, register_added_head, unregister_added_head
from modeling_mt2kd.modeling_mt2kd import masked_mean
from processing_mt2kd.processing_mt2kd import encode_labels

DISTILL = "distill"
"""The stage-1 task: audio only, the teachers make the targets; it has no row."""


@dataclass
class EncodedLabels:
    """A batch's labels of one task. `values`: the model-ready tensor (batch, ...), or None when the
    task has no vocabulary in this collator; `known`: (batch,) bool, rows whose label is usable;
    `events`: `(reason, detail)` data-health events (unknown names)."""

    values: torch.Tensor | None
    known: torch.Tensor
    events: list[tuple[str, str]]


LabelEncoder = Callable[[Sequence[Any], Sequence[str], Any], EncodedLabels]
"""`(raw role values of the rows that train the task, their example ids, the vocabulary or None)`;
the collator gives the other rows the row's `blank_label`."""


class TaskHead(nn.Module):
    """A head that MT2KDForMultiTask does not build: (batch, frames, hidden) 25 Hz encoder output and
    its (batch, frames) bool mask → a prediction, and the per-sample loss of a prediction."""

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward(hidden_states, frame_mask)")

    def loss(self, prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch,) loss of each sample (masking and weighting are the table's job)."""
        raise NotImplementedError(f"{type(self).__name__} must define loss(prediction, labels)")


@dataclass(frozen=True)
class Task:
    """One row of the task table (see the module docstring)."""

    name: str
    label_role: str
    batch_key: str
    label_argument: str
    mask_argument: str
    head_flags: tuple[str, ...]
    head_attributes: tuple[str, ...]
    loss_weights: tuple[str, ...]
    metrics: tuple[str, ...]
    encode: LabelEncoder
    blank_label: float | int = IGNORE_INDEX
    decodings: Mapping[str, tuple[str, ...]] | None = None
    prediction_field: str | None = None
    optional_head_flags: tuple[str, ...] = ()
    stage1_modules: tuple[str, ...] = ()
    head: Callable[[Any], TaskHead] | None = None
    vocabulary_from_labels: Callable[[Sequence[Any]], Any] | None = None
    class_count_field: str | None = None

    @property
    def metric(self) -> str:
        """The headline metric (reports and comparisons)."""
        return self.metrics[0]

    def has_head(self, model: nn.Module) -> bool:
        """Whether `model` holds one of this task's heads."""
        return any(getattr(model, attribute, None) is not None for attribute in self.head_attributes)

    def model_decodings(self, model: nn.Module) -> tuple[str, ...]:
        """The decodings of this task that `model`'s heads allow."""
        return tuple(
            method
            for attribute, methods in (self.decodings or {}).items()
            if getattr(model, attribute, None) is not None
            for method in methods
        )


# ---------------------------------------------------------------------------------------------
# Label encoders of the built-in tasks (vocabularies are duck-typed: no import of training_mt2kd.data)


def encode_transcripts(texts: Sequence[Any], ids: Sequence[str], tokenizer: Any) -> EncodedLabels:
    """Transcripts → BPE ids with `tokenizer` (None: no ids), by the processor's `encode_labels` (the one owner of
    label encoding); a row is known when its text is not blank."""
    texts = [str(text or "") for text in texts]
    known = torch.tensor([bool(text.strip()) for text in texts], dtype=torch.bool)
    if tokenizer is None:
        return EncodedLabels(None, known, [])
    labels = encode_labels(tokenizer, [text if text.strip() else "" for text in texts])
    return EncodedLabels(torch.from_numpy(labels), known, [])


def encode_tag_names(values: Sequence[Any], ids: Sequence[str], label_set: Any) -> EncodedLabels:
    """Tag names → (batch, num_labels) multi-hot with a `LabelSet`; unknown names are dropped and reported.
    Every row is known (a clip without tags is a negative); without a LabelSet none is."""
    if label_set is None:
        return EncodedLabels(None, torch.zeros(len(values), dtype=torch.bool), [])
    from training_mt2kd.data.health import SkipReason  # noqa: PLC0415 - the data package imports this module

    labels = torch.zeros(len(values), len(label_set), dtype=torch.float32)
    events = []
    for row, (value, example_id) in enumerate(zip(values, ids, strict=True)):
        multi_hot, unknown = label_set.encode(value)
        labels[row] = torch.from_numpy(multi_hot)
        events += [(SkipReason.UNKNOWN_LABEL.value, f"{example_id}: {name}") for name in unknown]
    return EncodedLabels(labels, torch.ones(len(values), dtype=torch.bool), events)


def encode_class_names(
    values: Sequence[Any], ids: Sequence[str], index: Any, unknown_reason: str = "unknown_speaker"
) -> EncodedLabels:
    """Class names → (batch,) int64 class ids with an index (`.get(name) -> id or None`, e.g.
    `SpeakerIndex`); IGNORE_INDEX where a row has no name or an unknown one (both reported)."""
    class_ids = torch.full((len(values),), IGNORE_INDEX, dtype=torch.long)
    known = torch.zeros(len(values), dtype=torch.bool)
    if index is None:
        return EncodedLabels(None, known, [])
    events = []
    for row, (value, example_id) in enumerate(zip(values, ids, strict=True)):
        class_id = index.get(value)
        if class_id is None:
            events.append((unknown_reason, str(example_id)))
            continue
        class_ids[row], known[row] = class_id, True
    return EncodedLabels(class_ids, known, events)


def class_index_from_names(names: Sequence[Any]) -> Any:
    """A `SpeakerIndex` (sorted distinct names → 0..N-1) of a task's training label values."""
    from training_mt2kd.data.labels import SpeakerIndex  # noqa: PLC0415 - the data package imports this module

    return SpeakerIndex.from_names(names)


# ---------------------------------------------------------------------------------------------
# The table

_TABLE: dict[str, Task] = {}


def register_task(task: Task, replace: bool = False) -> Task:
    """Add a row; an existing name needs `replace=True`."""
    if task.name in _TABLE and not replace:
        raise ValueError(f"task {task.name!r} is already in the table; pass replace=True to change its row")
    if task.name == DISTILL:
        raise ValueError(f"{DISTILL!r} is the stage-1 task and cannot be a row; choose another name")
    previous = _TABLE.get(task.name)
    if previous is not None and previous.head is not None:
        unregister_added_head(previous.head_attributes[0])
    _TABLE[task.name] = task
    if task.head is not None:  # MT2KDForMultiTask builds it, so from_pretrained rebuilds it and loads its weights
        register_added_head(AddedHead(task.head_attributes[0], task.head_flags, task.head))
    return task


def unregister_task(name: str) -> None:
    """Remove a row (tests that add a toy task remove it again)."""
    task = _TABLE.pop(name, None)
    if task is not None and task.head is not None:
        unregister_added_head(task.head_attributes[0])


def tasks() -> tuple[Task, ...]:
    """Every row, in registration order."""
    return tuple(_TABLE.values())


def task_names() -> tuple[str, ...]:
    return tuple(_TABLE)


def corpus_task_names() -> tuple[str, ...]:
    """Every task a corpus may train: the rows and stage 1's distillation."""
    return (*_TABLE, DISTILL)


def get_task(name: str) -> Task:
    if name not in _TABLE:
        raise ValueError(f"unknown task {name!r}; the task table has {list(_TABLE)}")
    return _TABLE[name]


def label_roles() -> tuple[str, ...]:
    """The corpus column roles that hold labels, one per row (shared roles once)."""
    return tuple(dict.fromkeys(task.label_role for task in _TABLE.values()))


register_task(Task(
    name="asr", label_role="text", batch_key="token_ids", label_argument="labels", mask_argument="asr_mask",
    head_flags=("use_ctc", "use_transducer"), optional_head_flags=("use_ctc",),
    head_attributes=("ctc_head", "transducer"), loss_weights=("ctc_loss_weight", "transducer_loss_weight"),
    metrics=("wer",), encode=encode_transcripts,
    decodings={"ctc_head": CTC_DECODING_METHODS, "transducer": TRANSDUCER_DECODING_METHODS},
))
register_task(Task(
    name="tagging", label_role="labels", batch_key="labels", label_argument="tagging_labels",
    mask_argument="tagging_mask", head_flags=("use_audio_tagging",), head_attributes=("tagging_head",),
    loss_weights=("tagging_loss_weight",), metrics=("map",), encode=encode_tag_names, blank_label=0.0,
    prediction_field="tagging_logits", stage1_modules=("tagging_head",),
))
register_task(Task(
    name="speaker", label_role="speaker", batch_key="speaker_ids", label_argument="speaker_labels",
    mask_argument="speaker_mask", head_flags=("use_speaker",), head_attributes=("speaker_head",),
    loss_weights=("speaker_loss_weight",), metrics=("eer", "min_dcf"), encode=encode_class_names,
    prediction_field="speaker_embeddings", stage1_modules=("speaker_head",),
    vocabulary_from_labels=class_index_from_names, class_count_field="num_speakers",
))


# ---------------------------------------------------------------------------------------------
# What the recipe reads from the table


def parse_task_list(value: str | Sequence[str]) -> tuple[str, ...]:
    """"asr+speaker" or a list → task names (not checked)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split("+") if part.strip())
    return tuple(value)


def head_flag_values(trained: Iterable[str], base: Mapping[str, Any]) -> dict[str, bool]:
    """Every row's head flags for a stage-2 model that trains `trained`: on for a trained task (an
    optional head keeps the base config's value), off otherwise."""
    trained = set(trained)
    values: dict[str, bool] = {}
    for task in _TABLE.values():
        for flag in task.head_flags:
            on = task.name in trained and (flag not in task.optional_head_flags or bool(base.get(flag, True)))
            values[flag] = values.get(flag, False) or on
    return values


def model_inputs(batch: Mapping[str, Any], trained: Iterable[str], device: torch.device | str) -> dict[str, Any]:
    """The label and mask arguments of every trained task, from a collated batch."""
    inputs = {}
    for name in trained:
        task = get_task(name)
        if task.batch_key not in batch:
            raise ValueError(
                f"the batch has no {task.batch_key!r} for task {name!r}; give the collator its vocabulary"
            )
        inputs[task.label_argument] = batch[task.batch_key].to(device)
        inputs[task.mask_argument] = batch["task_masks"][name].to(device)
    return inputs


def stage1_prefixes() -> tuple[str, ...]:
    """State-dict prefixes of the heads that stage 1 distils and stage 2 starts from."""
    return tuple(f"{module}." for task in _TABLE.values() for module in task.stage1_modules)


# ---------------------------------------------------------------------------------------------
# Heads outside MT2KDForMultiTask


def attach_task_heads(model: nn.Module) -> list[str]:
    """Build the head of every row that has one, whose flag is on in `model.config` and that `model` lacks,
    as a sub-module named `head_attributes[0]` (so optimisers, devices and state dicts see it).

    MT2KDForMultiTask builds these heads itself for the rows registered before it is constructed (and so
    `from_pretrained` restores them); this call covers other models and rows registered later."""
    attached = []
    for task in _TABLE.values():
        wanted = any(getattr(model.config, flag, False) for flag in task.head_flags)
        if task.head is None or not wanted or task.has_head(model):
            continue
        model.add_module(task.head_attributes[0], task.head(model.config))
        attached.append(task.name)
    return attached


def _attached_tasks(model: nn.Module) -> list[Task]:
    return [task for task in _TABLE.values() if task.head is not None and task.has_head(model)]


def forward_with_tasks(model: nn.Module, **inputs: Any) -> Any:
    """`model(**inputs)` plus every attached `TaskHead`: its prediction (output field `prediction_field`),
    and with its labels its masked mean loss (`<task>_loss`), weighted by its config field and added to `loss`.

    `model` may be wrapped (DDP): the wrapper runs the forward, the heads are read from the module inside.
    """
    inner = getattr(model, "module", model)
    attached = _attached_tasks(inner)
    own = {key: value for key, value in inputs.items()
           if key not in {argument for task in attached for argument in (task.label_argument, task.mask_argument)}}
    output = model(**own)
    if not attached:
        return output
    hidden, frame_mask = output.last_hidden_state, output.attention_mask.bool()
    for task in attached:
        head = getattr(inner, task.head_attributes[0])
        prediction = head(hidden, frame_mask)
        output[task.prediction_field or f"{task.name}_prediction"] = prediction
        labels = inputs.get(task.label_argument)
        if labels is None:
            continue
        loss = masked_mean(head.loss(prediction, labels), inputs.get(task.mask_argument))
        output[f"{task.name}_loss"] = loss
        weighted = getattr(inner.config, task.loss_weights[0], 1.0) * loss if task.loss_weights else loss
        output["loss"] = weighted if output.get("loss") is None else output["loss"] + weighted
    return output
