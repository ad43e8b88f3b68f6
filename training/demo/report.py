"""report.md of a demo run (from its results.json) and of `reproduce-small` (mean ± s.d. over seeds)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training_mt2kd.demo.comparison import LOWER_IS_BETTER, METRIC_NAMES, MODEL_TITLES, TASKS, beats
from training_mt2kd.demo.stage1_teachers import teacher_report_lines


def _direction(task: str) -> str:
    return "lower is better" if LOWER_IS_BETTER[task] else "higher is better"


def _header(decoding: str) -> list[str]:
    return [
        f"| model | WER % ({decoding}) ↓ | mAP % ↑ | EER % ↓ |",
        "|---|---|---|---|",
    ]


def verdict_line(task: str, mt2kd: str, scratch: str, beat: bool) -> str:
    """One plain sentence: did MT2KD beat multi-task from scratch on `task`?"""
    answer = "**yes**, MT2KD beat" if beat else "**no**, MT2KD did not beat"
    return (
        f"- {METRIC_NAMES[task]} ({task}): {answer} multi-task from scratch: {mt2kd} vs {scratch} ({_direction(task)})."
    )


def write_report(path: Path, results: dict[str, Any]) -> Path:
    """Write one demo run's report.md (results table, verdicts, floors, plots, setup, timings)."""
    comparison, steps = results["comparison"], results["steps_per_run"]
    corpus = results["corpus"]
    test_clips = corpus["speech_test"]["clips"] + corpus["events_test"]["clips"]
    value = {
        task: {key: f"{number:.2f}" for key, number in comparison[task].items() if key != "mt2kd_beats_scratch"}
        for task in TASKS
    }
    lines = [
        "# MT2KD demo report",
        "",
        f"`mt2kd demo --seed {results['seed']}` ran the whole MT2KD method at toy scale, offline on CPU: it "
        "synthesised a labelled corpus, trained three single-task teachers, distilled them into one student "
        "without labels (stage 1), fine-tuned it on the three labelled tasks (stage 2), trained the same model "
        "multi-task from scratch for comparison, and evaluated every model on the test split "
        f"({corpus['speech_test']['clips']} speech clips of unseen speakers, {test_clips} clips for tagging, "
        "the corpus' speaker-verification trials). Everything is synthetic and tiny: the numbers test the "
        "method's mechanics and its direction of effect, not the paper's figures.",
        "",
        "## Results on the test split",
        "",
        *_header(results["reported_decoding"]),
        f"| **{MODEL_TITLES['mt2kd']}** | {value['asr']['mt2kd']} | {value['tagging']['mt2kd']} | "
        f"{value['speaker']['mt2kd']} |",
        f"| {MODEL_TITLES['scratch']} (same steps as stage 2) | {value['asr']['scratch']} | "
        f"{value['tagging']['scratch']} | {value['speaker']['scratch']} |",
        f"| single-task models (the teachers) | {value['asr']['single_task']} | {value['tagging']['single_task']} | "
        f"{value['speaker']['single_task']} |",
        f"| {MODEL_TITLES['untrained']} | {value['asr']['untrained']} | {value['tagging']['untrained']} | "
        f"{value['speaker']['untrained']} |",
        f"| label prior / chance | – | {value['tagging']['label_prior']} | {value['speaker']['chance']} |",
        "",
        "## Did MT2KD beat multi-task from scratch?",
        "",
        *[
            verdict_line(task, value[task]["mt2kd"], value[task]["scratch"], comparison[task]["mt2kd_beats_scratch"])
            for task in TASKS
        ],
        "",
        f"Both ran {steps['mt2kd']} supervised steps on the same labelled data. MT2KD's encoder also had stage 1 "
        f"({steps['stage1']} steps distilling the teachers on the same training audio), and its teachers were "
        f"trained on the same labelled data ({steps['asr_teacher']}, {steps['tagging_teacher']} and "
        f"{steps['speaker_teacher']} steps): the comparison is equal in labelled data and stage-2 budget, not in "
        "total compute.",
        *_compute_lines(results),
        "",
        *_unlearnt_task_lines(comparison),
        *teacher_report_lines(results),
        *_floor_lines(value),
        *_plot_lines(),
        *_setup_lines(results),
        *_timing_lines(results),
        *_model_lines(results),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _floor_lines(value: dict[str, dict[str, str]]) -> list[str]:
    return [
        "## Floors",
        "",
        f"- ASR: MT2KD's WER is {value['asr']['mt2kd']} % against {value['asr']['untrained']} % for the untrained "
        "model.",
        f"- Tagging: MT2KD's mAP is {value['tagging']['mt2kd']} % against {value['tagging']['label_prior']} % for "
        "the label prior (every clip scored with the training-set frequency of each label).",
        f"- Speaker verification: MT2KD's EER is {value['speaker']['mt2kd']} % against 50 % for chance "
        f"({value['speaker']['untrained']} % for the untrained model).",
        "",
    ]


def _plot_lines() -> list[str]:
    return [
        "## Plots",
        "",
        "![training losses](plots/loss_curves.png)",
        "",
        "Training losses: stage 1's three distillation losses, then per task the training loss of MT2KD's "
        "stage 2, of multi-task from scratch and of the single-task model (moving averages of logged batches).",
        "",
        "![per-task results](plots/task_bars.png)",
        "",
        "![DET curves](plots/det_curve.png)",
        "",
    ]


def _model_lines(results: dict[str, Any]) -> list[str]:
    return [
        "## The model",
        "",
        f"`{results['model_dir']}/` holds the stage-2 MT2KD model ({results['model_parameters']:,} parameters, "
        "the training-only speaker classifier included) with its feature extractor, BPE tokenizer and remote "
        "code:",
        "",
        "```python",
        "import processing_mt2kd  # registers MT2KD with transformers (or pass trust_remote_code=True)",
        "from transformers import AutoModel, pipeline",
        "",
        f'encoder = AutoModel.from_pretrained("{results["model_dir"]}")',
        f'asr = pipeline("automatic-speech-recognition", model="{results["model_dir"]}")',
        f'tagger = pipeline("audio-classification", model="{results["model_dir"]}")',
        "```",
        "",
        f"    mt2kd transcribe --model {results['model_dir']} corpus/wav/test/speech",
        "",
        "Per-model evaluation JSON (training/evaluate.py) is in `results/`, every number above in "
        "`results.json`, each training run (config, history.jsonl, final model) in `runs/`.",
        "",
    ]


def _seed_verdicts(per_seed: Sequence[dict[str, Any]]) -> list[str]:
    """Per task: the verdict on the means over the seeds, and in how many seeds MT2KD was better."""
    verdicts = []
    for task in TASKS:
        mt2kd = [results["comparison"][task]["mt2kd"] for results in per_seed]
        scratch = [results["comparison"][task]["scratch"] for results in per_seed]
        wins = sum(beats(task, ours, theirs) for ours, theirs in zip(mt2kd, scratch))
        mean_beat = beats(task, statistics.fmean(mt2kd), statistics.fmean(scratch))
        verdicts.append(
            verdict_line(task, _mean_sd(mt2kd), _mean_sd(scratch), mean_beat)[:-1]
            + f"; better in {wins} of {len(per_seed)} seeds."
        )
    return verdicts


def _per_seed_rows(per_seed: Sequence[dict[str, Any]], seed_dirs: Sequence[str]) -> list[str]:
    """One table row per seed: MT2KD / scratch / single-task per task, and a link to its report."""
    return [
        f"| {results['seed']} | "
        + " | ".join(
            f"{results['comparison'][task]['mt2kd']:.2f} / {results['comparison'][task]['scratch']:.2f} / "
            f"{results['comparison'][task]['single_task']:.2f}"
            for task in TASKS
        )
        + f" | [report]({folder}/report.md) |"
        for results, folder in zip(per_seed, seed_dirs)
    ]


UNLEARNT_WER = 90.0
"""A WER from which no model is taken to have learnt to recognise speech (it outputs little that is right)."""


def _unlearnt_task_lines(comparison: dict[str, Any]) -> list[str]:
    """A plain warning when even the best model's WER shows that speech recognition was not learnt."""
    best = min(comparison["asr"][key] for key in ("mt2kd", "scratch", "single_task"))
    if best < UNLEARNT_WER:
        return []
    return [
        f"**Speech recognition was not learnt at this budget**: the best WER is {best:.2f} % (the models output "
        "little beyond the most common words), so the ASR comparison above says nothing about the method. More "
        "training steps (`mt2kd demo --set steps.asr_teacher=N ...`) are needed to test it.",
        "",
    ]


def _setup_lines(results: dict[str, Any]) -> list[str]:
    corpus, steps = results["corpus"], results["steps_per_run"]
    rows = [
        f"| {kind} | {split} | {corpus[f'{kind}_{split}']['clips']} | {60 * corpus[f'{kind}_{split}']['hours']:.1f} |"
        for kind in ("speech", "events")
        for split in ("train", "dev", "test")
    ]
    return [
        "## Setup",
        "",
        f"Labels (AudioSet names): {'; '.join(results['labels'])}. Speech clips are spoken by synthetic eSpeak NG "
        "speakers (train, dev and test speakers are disjoint) and mixed with 0–2 sound events and noise.",
        "",
        "| clips | split | count | minutes |",
        "|---|---|---|---|",
        *rows,
        "",
        "| training run | steps |",
        "|---|---|",
        *[f"| {name} | {count} |" for name, count in steps.items()],
        "",
    ]


def _compute_lines(results: dict[str, Any]) -> list[str]:
    """Training seconds of each side of the comparison: every training run but the baseline counts for MT2KD
    (its teachers, stage 1 and stage 2); each run's wall-clock build time, one core each when side by side."""
    seconds = {step["name"]: step["seconds"] for step in results["steps"]}
    mt2kd_runs = [name for name in results["steps_per_run"] if name != "scratch"]
    parts = ", ".join(f"{name} {seconds[name]:.0f} s" for name in mt2kd_runs)
    return [
        f"Training time here: MT2KD {sum(seconds[name] for name in mt2kd_runs):.0f} s in all ({parts}); "
        f"multi-task from scratch {seconds['scratch']:.0f} s."
    ]


def _timing_lines(results: dict[str, Any]) -> list[str]:
    rows = [
        f"| {step['title']} | {step['seconds']:.0f} | {'reused' if step['reused'] else 'built'} |"
        for step in results["steps"]
    ]
    return [
        "## Time",
        "",
        "Wall-clock seconds per step; training runs that do not depend on each other ran side by side, one per "
        "CPU core.",
        "",
        "| step | seconds to build | this run |",
        "|---|---|---|",
        *rows,
        "",
        f"Building the demo took {results['build_s'] / 60:.1f} minutes of wall-clock time on {results['cpu_cores']} "
        f"CPU cores; this invocation took {results['wall_s'] / 60:.1f} minutes (a reused step costs only its check).",
        "",
    ]


def _mean_sd(values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"


def write_reproduce_report(path: Path, per_seed: Sequence[dict[str, Any]], seed_dirs: Sequence[str]) -> Path:
    """report.md of `reproduce-small`: mean ± s.d. over the seeds' results.json, the verdicts, every seed's numbers."""
    seeds = [results["seed"] for results in per_seed]
    decoding = per_seed[0]["reported_decoding"]

    def column(task: str, key: str) -> list[float]:
        return [results["comparison"][task][key] for results in per_seed]

    def row(title: str, key: str, tasks: Sequence[str] = TASKS) -> str:
        cells = [_mean_sd(column(task, key)) if task in tasks else "–" for task in TASKS]
        return f"| {title} | {' | '.join(cells)} |"

    lines = [
        "# MT2KD reproduce-small report",
        "",
        f"The demo comparison (`mt2kd demo`) repeated with seeds {', '.join(map(str, seeds))}: each seed synthesises "
        "its own corpus and trains every model afresh. Values are mean ± sample standard deviation over the seeds, "
        "on each seed's test split.",
        "",
        *_header(decoding),
        row(f"**{MODEL_TITLES['mt2kd']}**", "mt2kd"),
        row(f"{MODEL_TITLES['scratch']} (same steps as stage 2)", "scratch"),
        row("single-task models (the teachers)", "single_task"),
        row(MODEL_TITLES["untrained"], "untrained"),
        row("label prior", "label_prior", tasks=("tagging",)),
        "",
        "## Did MT2KD beat multi-task from scratch?",
        "",
        "Judged on the means; the count says in how many seeds MT2KD was better.",
        "",
        *_seed_verdicts(per_seed),
        "",
        "## Every seed",
        "",
        "MT2KD / multi-task from scratch / single-task, in percent.",
        "",
        "| seed | WER | mAP | EER | details |",
        "|---|---|---|---|---|",
        *_per_seed_rows(per_seed, seed_dirs),
        "",
        "![per-task results](plots/task_bars.png)",
        "",
        f"Building all seeds took {sum(results['build_s'] for results in per_seed) / 60:.1f} minutes.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
