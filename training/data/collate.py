"""Examples → one padded batch: decode audio, drop bad examples, build per-task targets and masks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from training_mt2kd.data.corpus import TASKS
from training_mt2kd.data.decode import SkippedExample, decode_waveform
from training_mt2kd.data.health import SkipEvent, SkipReason
from training_mt2kd.data.labels import LabelSet, SpeakerIndex

IGNORE_INDEX = -100
"""`speaker_ids` value of examples without a speaker target (cross-entropy's ignore_index)."""

FeatureExtractor = Callable[..., Any]
"""`MT2KDFeatureExtractor`-like: `(list of (samples,) arrays, sampling_rate=, return_tensors="pt")`
→ mapping with `input_features` (B, T, 80) and `attention_mask` (B, T)."""


class AudioCollator:
    """DataLoader `collate_fn` for `CorpusMixture` examples (or any role-named examples + `tasks`).

    Returns a dict:
        waveforms         (B, S) float32 at `sample_rate` Hz, zero-padded after each waveform
        waveform_lengths  (B,) int64 samples
        task_masks        {task: (B,) bool} for every task in asr/tagging/speaker/distill; True
                          where the example trains that task and has its target
        text              list of B transcripts ("" where the example has none)
        labels            (B, num_labels) float32 multi-hot (only with `label_set`)
        speaker_ids       (B,) int64, IGNORE_INDEX where absent (only with `speaker_index`)
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
    ) -> None:
        if tasks is not None and any(task not in TASKS for task in tasks):
            raise ValueError(f"tasks must be among {list(TASKS)}; got {list(tasks)}")
        self.sample_rate = sample_rate
        self.label_set = label_set
        self.speaker_index = speaker_index
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

        task_masks = {task: torch.zeros(batch_size, dtype=torch.bool) for task in TASKS}
        texts: list[str] = []
        for row, (example, _) in enumerate(kept):
            tasks = self._tasks_of(example)
            text = str(example.get("text") or "")
            texts.append(text)
            task_masks["asr"][row] = "asr" in tasks and bool(text.strip())
            task_masks["tagging"][row] = "tagging" in tasks and self.label_set is not None
            task_masks["distill"][row] = "distill" in tasks

        batch: dict[str, Any] = {
            "waveforms": waveforms,
            "waveform_lengths": lengths,
            "task_masks": task_masks,
            "text": texts,
            "ids": [str(example.get("id")) for example, _ in kept],
            "corpus": [str(example.get("corpus", "")) for example, _ in kept],
            "health_events": events,
        }
        if self.label_set is not None:
            batch["labels"] = self._multi_hot(kept, task_masks["tagging"], events)
        if self.speaker_index is not None:
            batch["speaker_ids"] = self._speaker_ids(kept, task_masks["speaker"], events)
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

    def _multi_hot(
        self, kept: list[tuple[dict, np.ndarray]], mask: torch.Tensor, events: list[SkipEvent]
    ) -> torch.Tensor:
        labels = torch.zeros(len(kept), len(self.label_set), dtype=torch.float32)
        for row, (example, _) in enumerate(kept):
            if not mask[row]:
                continue
            multi_hot, unknown = self.label_set.encode(example.get("labels"))
            labels[row] = torch.from_numpy(multi_hot)
            events += [(SkipReason.UNKNOWN_LABEL.value, f"{example.get('id')}: {name}") for name in unknown]
        return labels

    def _speaker_ids(
        self, kept: list[tuple[dict, np.ndarray]], mask: torch.Tensor, events: list[SkipEvent]
    ) -> torch.Tensor:
        speaker_ids = torch.full((len(kept),), IGNORE_INDEX, dtype=torch.int64)
        for row, (example, _) in enumerate(kept):
            if "speaker" not in self._tasks_of(example):
                continue
            speaker_class = self.speaker_index.get(example.get("speaker"))
            if speaker_class is None:
                events.append((SkipReason.UNKNOWN_SPEAKER.value, str(example.get("id"))))
                continue
            speaker_ids[row] = speaker_class
            mask[row] = True
        return speaker_ids
