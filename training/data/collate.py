"""Examples → one padded batch: decode audio, drop bad examples, build per-task targets and masks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from training_mt2kd.data.decode import SkippedExample, decode_waveform
from training_mt2kd.data.health import SkipEvent
from training_mt2kd.data.labels import LabelSet, SpeakerIndex
from training_mt2kd.tasks import DISTILL, corpus_task_names, tasks as task_rows

FeatureExtractor = Callable[..., Any]
"""`MT2KDFeatureExtractor`-like: `(list of (samples,) arrays, sampling_rate=, return_tensors="pt")`
→ mapping with `input_features` (B, T, 80) and `attention_mask` (B, T)."""


class AudioCollator:
    """DataLoader `collate_fn` for `CorpusMixture` examples (or any role-named examples + `tasks`).

    Returns a dict:
        waveforms         (B, S) float32 at `sample_rate` Hz, zero-padded after each waveform
        waveform_lengths  (B,) int64 samples
        task_masks        {task: (B,) bool} for every task of the table (training_mt2kd.tasks) and
                          distill; True where the example trains that task and has its target
        text              list of B transcripts ("" where the example has none)
        <task batch_key>  each task's labels encoded with its vocabulary, only when the collator
                          has one: token_ids (B, max_tokens) int64 padded with IGNORE_INDEX
                          (asr, with a tokenizer), labels (B, num_labels) float32 multi-hot
                          (tagging, `label_set`), speaker_ids (B,) int64, IGNORE_INDEX where
                          absent (speaker, `speaker_index`)
        ids, corpus       lists of B strings
        health_events     [(reason, id), ...] for `DataHealth.record_events` in the training process
        input_features, attention_mask   from `feature_extractor` when one is given (clean audio)

    Examples that fail to decode, are empty, hold NaN/inf or exceed `max_duration_s` are left out
    (B may be 0 when all are bad: the loop must still step, with zero loss, to keep ranks in sync).
    Unknown tag names are dropped from the target and unknown speakers mask the speaker task; both
    are reported in `health_events` too. Audio at other rates is resampled; stereo is averaged.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        label_set: LabelSet | None = None,
        speaker_index: SpeakerIndex | None = None,
        feature_extractor: FeatureExtractor | None = None,
        max_duration_s: float | None = 30.0,
        tasks: Sequence[str] | None = None,
        vocabularies: Mapping[str, Any] | None = None,
    ) -> None:
        if tasks is not None and any(task not in corpus_task_names() for task in tasks):
            raise ValueError(f"tasks must be among {list(corpus_task_names())}; got {list(tasks)}")
        self.sample_rate = sample_rate
        self.label_set = label_set
        self.speaker_index = speaker_index
        # each task's vocabulary by task name (a tokenizer for asr, ...); label_set/speaker_index are shorthands
        self.vocabularies = {"tagging": label_set, "speaker": speaker_index, **(vocabularies or {})}
        self.feature_extractor = feature_extractor
        self.max_duration_s = max_duration_s
        self.tasks = tuple(tasks) if tasks is not None else None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        events: list[SkipEvent] = []
        kept: list[tuple[dict[str, Any], np.ndarray]] = []
        for example in examples:
            try:
                waveform = decode_waveform(example["audio"], self.sample_rate, self.max_duration_s)
            except SkippedExample as skipped:
                events.append((skipped.reason.value, str(example.get("id"))))
                continue
            kept.append((example, waveform))

        batch_size = len(kept)
        longest = max((waveform.shape[0] for _, waveform in kept), default=0)
        waveforms = torch.zeros(batch_size, longest, dtype=torch.float32)
        lengths = torch.zeros(batch_size, dtype=torch.int64)
        for row, (_, waveform) in enumerate(kept):
            waveforms[row, : waveform.shape[0]] = torch.from_numpy(waveform)
            lengths[row] = waveform.shape[0]

        batch: dict[str, Any] = {
            "waveforms": waveforms,
            "waveform_lengths": lengths,
            "task_masks": {},
            "text": [str(example.get("text") or "") for example, _ in kept],
            "ids": [str(example.get("id")) for example, _ in kept],
            "corpus": [str(example.get("corpus", "")) for example, _ in kept],
            "health_events": events,
        }
        self._add_labels(batch, [example for example, _ in kept])
        if self.feature_extractor is not None and batch_size > 0:
            features = self.feature_extractor(
                [waveform for _, waveform in kept], sampling_rate=self.sample_rate, return_tensors="pt"
            )
            batch["input_features"] = features["input_features"]
            batch["attention_mask"] = features["attention_mask"]
        return batch

    def _tasks_of(self, example: dict[str, Any]) -> Sequence[str]:
        tasks = example.get("tasks", self.tasks)
        if tasks is None:
            raise ValueError(
                f"example {example.get('id')!r} carries no 'tasks'; index corpora through CorpusMixture or pass "
                "AudioCollator(tasks=...)"
            )
        return tasks

    def _add_labels(self, batch: dict[str, Any], examples: list[dict[str, Any]]) -> None:
        """Each task's mask, and its labels encoded with its vocabulary (see the task table); rows
        that do not train a task get its `blank_label`."""
        example_tasks = [self._tasks_of(example) for example in examples]
        for task in task_rows():
            rows = [row for row, names in enumerate(example_tasks) if task.name in names]
            encoded = task.encode(
                [examples[row].get(task.label_role) for row in rows],
                [batch["ids"][row] for row in rows],
                self.vocabularies.get(task.name),
            )
            mask = torch.zeros(len(examples), dtype=torch.bool)
            mask[rows] = encoded.known
            batch["task_masks"][task.name] = mask
            batch["health_events"] += encoded.events
            if encoded.values is not None:
                values = torch.full((len(examples), *encoded.values.shape[1:]), task.blank_label, dtype=encoded.values.dtype)
                values[rows] = encoded.values
                batch[task.batch_key] = values
        batch["task_masks"][DISTILL] = torch.tensor([DISTILL in names for names in example_tasks], dtype=torch.bool)
