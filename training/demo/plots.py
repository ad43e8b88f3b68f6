"""The report's figures (PNG, matplotlib without a display): loss curves, per-task bars, DET curves."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402

from training_mt2kd.evaluation.metrics import det_curve  # noqa: E402

DPI = 110
SMOOTHING_WINDOW = 10  # logged values per point of a loss curve (each is one batch's loss, so noisy)
TASK_TITLES = {
    "asr": "ASR: WER (%, lower is better)",
    "tagging": "Tagging: mAP (%, higher is better)",
    "speaker": "Speaker verification: EER (%, lower is better)",
}
TRAINING_LOSSES = {"asr": "transducer_loss", "tagging": "tagging_loss", "speaker": "speaker_loss"}
DISTILLATION_LOSSES = {
    "whisper_loss": "ASR-teacher frames (L1)",
    "tagging_loss": "tag probabilities (BCE)",
    "speaker_loss": "speaker embedding (1 - cos)",
}


def read_history(run_dir: Path) -> list[dict]:
    """The records of a run's history.jsonl (one per logged step)."""
    path = Path(run_dir) / "history.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _curve(records: list[dict], key: str, window: int = SMOOTHING_WINDOW) -> tuple[list[int], list[float]]:
    """(steps, moving average over `window` logged values) of a loss; records where it is 0 (no
    sample of the batch had the task) are left out."""
    points = [(record["step"], record[key]) for record in records if record.get(key)]
    values = np.asarray([value for _, value in points], dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    starts = np.maximum(np.arange(len(values)) + 1 - window, 0)
    smoothed = (cumulative[1:] - cumulative[starts]) / (np.arange(len(values)) + 1 - starts)
    return [step for step, _ in points], smoothed.tolist()


def plot_loss_curves(stage1: list[dict], per_task: Mapping[str, Mapping[str, list[dict]]], path: Path) -> Path:
    """Stage-1 distillation losses, then one panel per task comparing the training loss of each
    model that learns it (`per_task[task][model title] = history records`)."""
    figure, axes = plt.subplots(1, 1 + len(per_task), figsize=(4.2 * (1 + len(per_task)), 3.6))
    for key, label in DISTILLATION_LOSSES.items():
        axes[0].plot(*_curve(stage1, key), label=label)
    axes[0].set(title="Stage 1: distillation losses", xlabel="step", yscale="log")
    axes[0].set_ylabel(f"moving average of {SMOOTHING_WINDOW} logged batches")
    for axis, (task, histories) in zip(axes[1:], per_task.items()):
        for title, records in histories.items():
            axis.plot(*_curve(records, TRAINING_LOSSES[task]), label=title)
        axis.set(title=f"{task}: {TRAINING_LOSSES[task]} (training)", xlabel="step", yscale="log")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return _save(figure, path)


@dataclass(frozen=True)
class Bar:
    """One bar: a model's value (percent) on a task, with an optional spread (s.d. over seeds)."""

    label: str
    value: float
    spread: float | None = None


def plot_task_bars(bars: Mapping[str, Sequence[Bar]], floors: Mapping[str, tuple[str, float]], path: Path) -> Path:
    """One panel per task: the models' bars (with s.d. whiskers when given) and a dashed floor line
    (`floors[task] = (label, value)`, e.g. the untrained model's WER)."""
    figure, axes = plt.subplots(1, len(bars), figsize=(4.4 * len(bars), 3.8))
    for axis, (task, task_bars) in zip(np.atleast_1d(axes), bars.items()):
        positions = np.arange(len(task_bars))
        spreads = [bar.spread for bar in task_bars]
        axis.bar(
            positions,
            [bar.value for bar in task_bars],
            capsize=4,
            yerr=None if None in spreads else spreads,
            color=[f"C{index}" for index in range(len(task_bars))],
        )
        for position, bar in zip(positions, task_bars):
            axis.annotate(f"{bar.value:.1f}", (position, bar.value), ha="center", va="bottom", fontsize=8)
        if task in floors:
            label, value = floors[task]
            axis.axhline(value, color="grey", linestyle="--", label=f"{label}: {value:.1f}")
            axis.legend(fontsize=7)
        axis.set_xticks(positions, [bar.label for bar in task_bars], rotation=15, fontsize=8)
        axis.set(title=TASK_TITLES[task])
        axis.title.set_fontsize(9)
        axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_det_curves(trials: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """DET curves (miss vs false-alarm rate on normal-deviate axes) of `trials[label] = (scores, is_target)`."""
    normal = NormalDist()
    ticks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9]
    limits = (normal.inv_cdf(0.005), normal.inv_cdf(0.95))

    def deviate(rates: np.ndarray) -> np.ndarray:
        return np.array([normal.inv_cdf(float(rate)) for rate in np.clip(rates, 1e-4, 1 - 1e-4)])

    figure, axis = plt.subplots(figsize=(4.8, 4.6))
    for label, (scores, is_target) in trials.items():
        false_alarm, miss, _ = det_curve(scores, is_target)
        axis.plot(deviate(false_alarm), deviate(miss), label=label)
    axis.plot(limits, limits, color="grey", linestyle=":", linewidth=0.8, label="EER line")
    tick_positions = [normal.inv_cdf(tick) for tick in ticks]
    tick_labels = [f"{100 * tick:g}" for tick in ticks]
    axis.set_xticks(tick_positions, tick_labels)
    axis.set_yticks(tick_positions, tick_labels)
    axis.set(
        xlim=limits,
        ylim=limits,
        xlabel="false-alarm rate (%)",
        ylabel="miss rate (%)",
        title="Speaker verification (test trials)",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path
