"""`mt2kd demo`: the whole method at toy scale, step by step, each step reused when already built.

Steps (folders under the output directory):

    corpus/           synthetic speech, sound events and mixtures (training_mt2kd.demo.synthesis)
    data/             the corpus per kind of clip (speech / events), as the scripts read it
    runs/<name>/      training runs with the real scripts: three single-task teachers (finetune.py,
                      from scratch; they are also the single-task baselines), stage 1 (kd.py, no
                      labels), stage 2 (finetune.py from stage 1), multi-task from scratch with
                      stage 2's step budget; and an untrained model as a floor reference
    results/          evaluate.py's JSON per model on the test split, per-trial SV scores
    model/            the stage-2 model with its processor and remote code: loads with
                      `AutoModel.from_pretrained`, `pipeline(...)` and `mt2kd transcribe|tag|verify`
    plots/, report.md, results.json, demo_state.json (what is built, from which inputs, in how long)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from training_mt2kd.release.remote_code import save_with_remote_code
from training_mt2kd.demo.synthesis import DemoCorpus, load_demo_corpus, synthesize_demo_corpus

from training_mt2kd.evaluation.config import evaluation_config_from_dict
from training_mt2kd.evaluation.runner import EvaluatedModel, evaluate
from training_mt2kd.demo.evaluation import evaluation_config, headline_metrics, label_prior, trial_scores
from training_mt2kd.demo.ledger import StepLedger
from training_mt2kd.demo.plan import DemoPlan, load_plan
from training_mt2kd.yaml_config import merge
from training_mt2kd.demo.comparison import MODEL_TITLES, TASKS, beats
from training_mt2kd.demo.plots import Bar, plot_det_curves, plot_loss_curves, plot_task_bars, read_history
from training_mt2kd.demo.report import write_report
from training_mt2kd.demo.runs import POLL_S, TrainingProcess, TrainingRun, terminate_raises_system_exit
from training_mt2kd.demo.stage1_teachers import stage1_needs, stage1_values
from training_mt2kd.demo.task_manifests import TaskManifests, write_task_manifests

SINGLE_TASK_RUNS = {"asr": "asr_teacher", "tagging": "tagging_teacher", "speaker": "speaker_teacher"}
EVALUATED_TASKS = {
    "asr_teacher": ("asr",),
    "tagging_teacher": ("tagging",),
    "speaker_teacher": ("speaker",),
    "mt2kd": TASKS,
    "scratch": TASKS,
    "untrained": TASKS,
}
DET_MODELS = ("mt2kd", "scratch", "speaker_teacher")
TRIAL_SCORES_FILE = "trial_scores.npz"


@dataclass(frozen=True)
class StepRecord:
    """One step of a demo run: how long building it took (now or when it was built) and whether it was reused."""

    name: str
    title: str
    seconds: float
    reused: bool


class StepRunner:
    """Runs the demo's steps through the ledger, one progress line per step start and end."""

    def __init__(self, ledger: StepLedger, num_steps: int) -> None:
        self.ledger = ledger
        self.num_steps = num_steps
        self.records: list[StepRecord] = []
        self._started = 0

    def run(self, name: str, title: str, inputs: Any, outputs: Sequence[Path], build: Callable[[bool], None]) -> str:
        """Build step `name` unless the ledger has it from the same `inputs` with its `outputs` present;
        `build(resume)` is told whether an interrupted build of the same inputs may be resumed. Returns
        the step's key (what later steps that use it name among their inputs)."""
        key = self.ledger.key(inputs)
        if self.reuse(name, title, key, outputs):
            return key
        resume = self.begin(name, title, key)
        started_at = time.time()
        build(resume)
        self.end(name, title, key, started_at)
        return key

    def reuse(self, name: str, title: str, key: str, outputs: Sequence[Path]) -> bool:
        """Record the step as reused and say so, if the ledger has it finished under `key`."""
        if not self.ledger.is_finished(name, key, outputs):
            return False
        seconds = self.ledger.seconds(name)
        self._say(f"{self._position()} {title}: reused (built in {seconds:.0f} s)")
        self.records.append(StepRecord(name, title, seconds, reused=True))
        return True

    def begin(self, name: str, title: str, key: str) -> bool:
        """Mark the step started; returns whether an interrupted build of the same inputs may be resumed."""
        self._say(f"{self._position()} {title} ...")
        resume = self.ledger.was_started(name, key)
        self.ledger.start(name, key)
        return resume

    def end(self, name: str, title: str, key: str, started_at: float) -> None:
        self.ledger.finish(name, key, started_at, time.time())
        seconds = self.ledger.seconds(name)
        self._say(f"{title}: done in {seconds:.0f} s")
        self.records.append(StepRecord(name, title, seconds, reused=False))

    def _position(self) -> str:
        self._started += 1
        return f"[{self._started}/{self.num_steps}]"

    @staticmethod
    def _say(line: str) -> None:
        tqdm.write(line)  # above any progress bars instead of through them


def available_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def train_all(
    runs: dict[str, TrainingRun], runner: StepRunner, inputs: Callable[[TrainingRun, dict[str, str]], Any], jobs: int
) -> dict[str, str]:
    """Train (or reuse) every run, up to `jobs` at a time as their `needs` allow, each in its own process
    with an equal share of the CPU cores; returns each run's key. `inputs(run, keys of finished runs)`
    gives what a run's key is computed from."""
    cores = available_cores()
    keys: dict[str, str] = {}
    pending = list(runs.values())
    running: dict[str, tuple[TrainingProcess, str, float, tqdm]] = {}
    try:
        while pending or running:
            ready = [run for run in pending if all(need in keys for need in run.needs)]
            concurrent = len(running) + min(jobs - len(running), len(ready))
            for run in ready[: jobs - len(running)]:
                pending.remove(run)
                key = runner.ledger.key(inputs(run, keys))
                title = f"{run.title}, {run.max_steps} steps"
                if runner.reuse(run.name, title, key, [run.final]):
                    keys[run.name] = key
                    continue
                resume = runner.begin(run.name, title, key)
                process = TrainingProcess(run, resume, threads=max(1, cores // concurrent))
                bar = tqdm(total=run.max_steps, desc=run.name, unit="step", dynamic_ncols=True)
                running[run.name] = (process, key, time.time(), bar)
            for name, (process, key, started_at, bar) in list(running.items()):
                bar.update(process.steps_done() - bar.n)
                if process.poll():
                    process.wait()
                    bar.close()
                    del running[name]
                    runner.end(name, f"{runs[name].title}, {runs[name].max_steps} steps", key, started_at)
                    keys[name] = key
            if running:
                time.sleep(POLL_S)
            elif pending and not any(all(need in keys for need in run.needs) for run in pending):
                raise ValueError(f"runs {[run.name for run in pending]} need runs that are not in the demo")
    finally:
        for process, _, _, bar in running.values():
            process.stop()
            bar.close()
    return keys


def training_runs(plan: DemoPlan, manifests: TaskManifests, runs_dir: Path, seed: int) -> dict[str, TrainingRun]:
    """The six training runs of the demo, by name, with their complete run configurations."""
    # Over 60 lines on purpose: one table of the six runs, read top to bottom like the demo's plan.
    labels = {"model": {"overrides": {"id2label": dict(enumerate(manifests.corpus.labels))}}}
    speech_s, events_s = manifests.durations_s["speech", "train"], manifests.durations_s["events", "train"]

    def speech(tasks: str) -> dict:
        return manifests.corpus_entry("speech", "train", tasks, weight=speech_s)

    def events(tasks: str) -> dict:
        return manifests.corpus_entry("events", "train", tasks, weight=events_s)

    def config(name: str, steps: int, corpora: list[dict], extra: dict | None = None) -> dict:
        values = merge(merge(plan.run, labels), extra or {})
        return merge(
            values,
            {
                "data": {"train": corpora},
                "training": {"output_dir": str(runs_dir / name), "max_steps": steps, "seed": seed},
            },
        )

    steps = plan.steps
    labelled = [speech("asr+tagging+speaker"), events("tagging")]
    runs = [
        TrainingRun(
            "asr_teacher",
            "ASR teacher (single-task, from scratch)",
            "finetune",
            config("asr_teacher", steps["asr_teacher"], [speech("asr")]),
        ),
        TrainingRun(
            "tagging_teacher",
            "tagging teacher (single-task, from scratch)",
            "finetune",
            config("tagging_teacher", steps["tagging_teacher"], [speech("tagging"), events("tagging")]),
        ),
        TrainingRun(
            "speaker_teacher",
            "speaker teacher (single-task, from scratch)",
            "finetune",
            config("speaker_teacher", steps["speaker_teacher"], [speech("speaker")]),
        ),
        TrainingRun(
            "stage1",
            "stage 1: distil the three teachers into one student (no labels)",
            "kd",
            config(
                "stage1",
                steps["stage1"],
                [speech("distill"), events("distill")],
                stage1_values(plan, runs_dir),
            ),
            needs=stage1_needs(plan),
        ),
        TrainingRun(
            "mt2kd",
            "stage 2: multi-task fine-tuning from stage 1 (MT2KD)",
            "finetune",
            config("mt2kd", steps["stage2"], labelled, {"model": {"init_from": str(runs_dir / "stage1" / "final")}}),
            needs=("stage1",),
        ),
        TrainingRun(
            "scratch",
            "baseline: multi-task from scratch, stage 2's step budget",
            "finetune",
            config("scratch", steps["stage2"], labelled),
        ),
    ]
    return {run.name: run for run in runs}


def save_untrained_model(trained: Path, folder: Path, seed: int) -> Path:
    """A randomly initialised model of the same configuration and front end as `trained` (a floor reference)."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
    torch.manual_seed(seed)
    MT2KDForMultiTask(MT2KDConfig.from_pretrained(trained)).save_pretrained(folder)
    return folder


MODEL_README = """# MT2KD demo model

A tiny MT2KD model (Zipformer2 encoder; ASR, audio tagging and speaker verification in one pass)
trained by `mt2kd demo` on a synthetic corpus: stage 1 distilled three tiny single-task teachers,
stage 2 fine-tuned on the three labelled tasks. It knows only the demo's synthetic speech and sound
events. Results and how it was made: `../report.md`.

```python
import processing_mt2kd  # registers MT2KD with transformers (or pass trust_remote_code=True)
from transformers import AutoModel, pipeline

model_dir = "mt2kd-demo/model"  # this folder (`mt2kd demo --output mt2kd-demo`)
encoder = AutoModel.from_pretrained(model_dir)
asr = pipeline("automatic-speech-recognition", model=model_dir)
tagger = pipeline("mt2kd-audio-classification", model=model_dir)
verifier = pipeline("mt2kd-speaker-verification", model=model_dir)  # threshold calibrated on the dev speakers
```

    mt2kd transcribe --model mt2kd-demo/model speech.wav
"""


def save_model_folder(trained: Path, folder: Path) -> Path:
    """The stage-2 model with its processor files, speaker index, remote-code bundle and a README."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(trained, folder)
    save_with_remote_code(MT2KDForMultiTask.from_pretrained(trained), folder)
    (folder / "README.md").write_text(MODEL_README, encoding="utf-8")  # no path of this machine in it
    return folder


def calibrate_speaker_threshold(folder: Path, manifests: TaskManifests, batch_duration_s: float) -> dict[str, Any]:
    """Store in `folder` the EER threshold of every pair of dev-speaker utterances (the test trials stay unseen),
    so that `mt2kd verify` and the verification pipeline decide with a threshold measured on this model."""
    entry = {
        "task": "speaker",
        "dataset": "mt2kd-demo",
        "split": "dev",
        **manifests.evaluation_source("speech", "dev", "speaker"),
        "p_targets": [0.05],
        "calibrate_threshold": True,
    }
    config = evaluation_config_from_dict(
        {"batch_duration_s": batch_duration_s, "evaluations": [entry]}, manifests.corpus.root, where="demo threshold"
    )
    return evaluate(folder, config, batch_duration_s=batch_duration_s)


def count_parameters(folder: Path) -> int:
    """Parameters in a folder's model.safetensors (read from the file header, no weights loaded)."""
    with safe_open(folder / "model.safetensors", framework="pt") as weights:
        return sum(int(np.prod(weights.get_slice(name).get_shape())) for name in weights.keys())


@dataclass(frozen=True)
class DemoOutcome:
    """What a demo run left: the report, the model folder, results.json's contents and the steps."""

    output_dir: Path
    report: Path
    model_dir: Path
    results: dict[str, Any]
    steps: list[StepRecord]


def run_demo(
    output_dir: str | Path, seed: int = 0, plan: DemoPlan | None = None, jobs: int | None = None
) -> DemoOutcome:
    """Run (or finish, or reuse) the demo in `output_dir`; see the module docstring for what it builds.

    `jobs` training runs go side by side when their inputs allow (default: one per CPU core).
    """
    # Over 60 lines on purpose: the demo's steps in the order they run, each a cached `runner.run`.
    started = time.perf_counter()
    root = Path(output_dir).resolve()
    plan = plan or load_plan()
    ledger = StepLedger(root)
    runner = StepRunner(ledger, num_steps=1 + 6 + 1 + len(EVALUATED_TASKS) + 2)

    corpus_inputs = {"seed": seed, **plan.corpus}
    corpus_key = runner.run(
        "corpus",
        "synthesise the demo corpus",
        corpus_inputs,
        [root / "corpus"],
        lambda resume: synthesize_demo_corpus(root / "corpus", seed=seed, **plan.corpus),
    )
    corpus: DemoCorpus = load_demo_corpus(root / "corpus")
    manifests = write_task_manifests(corpus, root / "data")

    runs = training_runs(plan, manifests, root / "runs", seed)
    keys = {"corpus": corpus_key}
    with terminate_raises_system_exit():  # a killed demo stops its training processes too
        keys |= train_all(
            runs,
            runner,
            lambda run, done: {"config": run.config, "corpus": corpus_key, "needs": [done[name] for name in run.needs]},
            jobs or available_cores(),
        )
    folders = {name: run.final for name, run in runs.items()}
    folders["untrained"] = root / "runs" / "untrained"
    keys["untrained"] = runner.run(
        "untrained",
        "untrained model (floor reference)",
        {"mt2kd": keys["mt2kd"], "seed": seed},
        [folders["untrained"]],
        lambda resume: save_untrained_model(folders["mt2kd"], folders["untrained"], seed),
    )

    evaluations = evaluate_models(runner, folders, keys, manifests, plan, root / "results")
    model_dir = root / "model"

    def build_model_folder(resume: bool) -> None:
        save_model_folder(folders["mt2kd"], model_dir)
        calibrate_speaker_threshold(model_dir, manifests, plan.evaluation["batch_duration_s"])

    runner.run(
        "model",
        "model folder (stage-2 model, processor, remote code, speaker threshold from the dev speakers)",
        {"mt2kd": keys["mt2kd"], "speaker_threshold": "dev-speaker pairs, equal error rate"},
        [model_dir],
        build_model_folder,
    )

    results = summarise(seed, plan, manifests, runs, evaluations, count_parameters(model_dir))
    figures = write_figures(root, runs, results, np.load(root / "results" / TRIAL_SCORES_FILE))
    results["steps"] = [asdict(record) for record in runner.records]
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["build_s"] = round(ledger.busy_seconds([record.name for record in runner.records]), 1)
    results["figures"] = {name: str(path.relative_to(root)) for name, path in figures.items()}
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = write_report(root / "report.md", results)
    return DemoOutcome(root, report, model_dir, results, runner.records)


def evaluate_models(
    runner: StepRunner,
    folders: dict[str, Path],
    keys: dict[str, str],
    manifests: TaskManifests,
    plan: DemoPlan,
    results_dir: Path,
) -> dict[str, dict]:
    """evaluate.py's results of every model on its tasks (`results_dir/<name>.json`), and the per-trial
    speaker scores of the DET models (`results_dir/trial_scores.npz`); each reused when built."""
    evaluations = {}
    batch_duration_s = plan.evaluation["batch_duration_s"]
    for name, tasks in EVALUATED_TASKS.items():
        path = results_dir / f"{name}.json"

        def build(resume: bool, name: str = name, tasks: tuple[str, ...] = tasks, path: Path = path) -> None:
            config = evaluation_config(manifests, tasks, plan.evaluation)
            results = evaluate(folders[name], config, batch_duration_s=batch_duration_s)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

        inputs = {"model": keys[name], "tasks": tasks, "evaluation": plan.evaluation, "corpus": keys["corpus"]}
        runner.run(f"evaluate_{name}", f"evaluate {MODEL_TITLES[name]}", inputs, [path], build)
        evaluations[name] = json.loads(path.read_text(encoding="utf-8"))

    scores_path = results_dir / TRIAL_SCORES_FILE

    def score_trials(resume: bool) -> None:
        arrays = {}
        for name in DET_MODELS:
            model = EvaluatedModel.from_folder(folders[name])
            arrays[f"{name}_scores"], arrays["is_target"] = trial_scores(model, manifests, batch_duration_s)
        np.savez(scores_path, **arrays)

    inputs = {name: keys[name] for name in DET_MODELS} | {"corpus": keys["corpus"]}
    runner.run("trial_scores", "per-trial speaker scores for the DET plot", inputs, [scores_path], score_trials)
    return evaluations


def write_figures(root: Path, runs: dict[str, TrainingRun], results: dict[str, Any], trials: Any) -> dict[str, Path]:
    """The report's PNGs under `root/plots`: loss curves, per-task bars, DET curves (`trials`: the saved scores)."""
    histories = {
        task: {MODEL_TITLES[name]: read_history(runs[name].output_dir) for name in ("mt2kd", "scratch", single)}
        for task, single in SINGLE_TASK_RUNS.items()
    }
    det_trials = {MODEL_TITLES[name]: (trials[f"{name}_scores"], trials["is_target"]) for name in DET_MODELS}
    return {
        "loss_curves": plot_loss_curves(
            read_history(runs["stage1"].output_dir), histories, root / "plots" / "loss_curves.png"
        ),
        "task_bars": plot_task_bars(*task_bars(results), root / "plots" / "task_bars.png"),
        "det_curve": plot_det_curves(det_trials, root / "plots" / "det_curve.png"),
    }


def summarise(
    seed: int,
    plan: DemoPlan,
    manifests: TaskManifests,
    runs: dict[str, TrainingRun],
    evaluations: dict[str, dict],
    num_parameters: int,
) -> dict[str, Any]:
    """results.json: headline metrics per model, the floors, the MT2KD-vs-scratch verdicts and the setup."""
    decoding = plan.evaluation["reported_decoding"]
    metrics = {name: headline_metrics(results, decoding) for name, results in evaluations.items()}
    prior = label_prior(manifests)
    comparison = {}
    for task in TASKS:
        mt2kd, scratch = metrics["mt2kd"][task], metrics["scratch"][task]
        comparison[task] = {
            "mt2kd": mt2kd,
            "scratch": scratch,
            "single_task": metrics[SINGLE_TASK_RUNS[task]][task],
            "untrained": metrics["untrained"][task],
            "mt2kd_beats_scratch": beats(task, mt2kd, scratch),
        }
    comparison["tagging"]["label_prior"] = prior.mean_average_precision
    comparison["speaker"]["chance"] = 50.0
    corpus = {
        f"{kind}_{split}": {"clips": _count_rows(path), "hours": round(manifests.durations_s[kind, split] / 3600, 3)}
        for (kind, split), path in manifests.manifests.items()
    }
    return {
        "seed": seed,
        "reported_decoding": decoding,
        "metrics": metrics,
        "comparison": comparison,
        "label_prior": {"frequencies": prior.frequencies, "map": prior.mean_average_precision},
        "corpus": corpus,
        "labels": list(manifests.corpus.labels),
        "steps_per_run": {name: run.max_steps for name, run in runs.items()},
        "model_parameters": num_parameters,
        "cpu_cores": available_cores(),
        "model_dir": "model",
        "plan": plan.to_dict(),
    }


def task_bars(results: dict[str, Any]) -> tuple[dict[str, list[Bar]], dict[str, tuple[str, float]]]:
    """Bars (MT2KD, from scratch, single-task) and floor lines per task, from one run's results.json."""
    comparison = results["comparison"]
    bars = {
        task: [
            Bar(MODEL_TITLES[name], comparison[task][key])
            for name, key in (("mt2kd", "mt2kd"), ("scratch", "scratch"), (SINGLE_TASK_RUNS[task], "single_task"))
        ]
        for task in TASKS
    }
    floors = {
        "asr": ("untrained", comparison["asr"]["untrained"]),
        "tagging": ("label prior", comparison["tagging"]["label_prior"]),
        "speaker": ("chance", comparison["speaker"]["chance"]),
    }
    return bars, floors


def _count_rows(path: Path) -> int:
    with open(path, encoding="utf-8") as file:
        return sum(1 for _ in file) - 1
