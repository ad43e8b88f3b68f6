"""The comparison the demo reports: which models, which metric per task, and which direction is better."""

from __future__ import annotations

TASKS = ("asr", "tagging", "speaker")
METRIC_NAMES = {"asr": "WER", "tagging": "mAP", "speaker": "EER"}
LOWER_IS_BETTER = {"asr": True, "tagging": False, "speaker": True}
MODEL_TITLES = {
    "mt2kd": "MT2KD (stage 1 + stage 2)",
    "scratch": "multi-task from scratch",
    "asr_teacher": "single-task ASR",
    "tagging_teacher": "single-task tagging",
    "speaker_teacher": "single-task speaker",
    "untrained": "untrained model",
}


def beats(task: str, value: float, other: float) -> bool:
    """Whether `value` is strictly better than `other` on `task`'s metric (percent)."""
    return value < other if LOWER_IS_BETTER[task] else value > other
