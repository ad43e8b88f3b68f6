"""`mt2kd demo` end to end at CI size (training/configs/demo_ci.yaml), its reuse of finished steps, and
`reproduce-small`'s summary."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from transformers import AutoModel, pipeline

from modeling_mt2kd import MT2KDModel
from processing_mt2kd import load_audio
from training_mt2kd.cli import main as cli
from training_mt2kd.demo import load_plan, packaged_plan, run_demo
from training_mt2kd.demo import orchestration
from training_mt2kd.demo.ledger import StepLedger
from training_mt2kd.demo.plan import plan_from_dict
from training_mt2kd.demo.orchestration import StepRunner
from training_mt2kd.demo.runs import TrainingProcess, TrainingRun
from training_mt2kd.demo.comparison import TASKS
from training_mt2kd.demo.report import write_reproduce_report
from training_mt2kd.demo.reproduce import aggregate_bars

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The CI-size demo, built once for the tests of this module."""
    return run_demo(tmp_path_factory.mktemp("demo"), seed=0, plan=load_plan(packaged_plan("demo_ci.yaml")))


@pytest.fixture(scope="module")
def test_clip(demo) -> dict:
    """A speech clip of the demo's test split, decoded."""
    path = next((demo.output_dir / "corpus" / "wav" / "test" / "speech").glob("*.wav"))
    waveform, sampling_rate = load_audio(path)
    return {"path": path, "raw": waveform, "sampling_rate": sampling_rate}


@pytest.mark.slow
def test_demo_reports_every_model_on_every_task_with_a_verdict_per_task(demo):
    report = demo.report.read_text(encoding="utf-8")
    for row in ("**MT2KD (stage 1 + stage 2)**", "multi-task from scratch", "single-task models", "untrained model",
                "label prior / chance"):  # fmt: skip
        assert f"| {row}" in report, row
    for metric in ("WER (asr)", "mAP (tagging)", "EER (speaker)"):
        assert f"- {metric}: **yes**" in report or f"- {metric}: **no**" in report, metric
    comparison = demo.results["comparison"]
    for task in TASKS:
        for key in ("mt2kd", "scratch", "single_task", "untrained"):
            assert math.isfinite(comparison[task][key]), (task, key)
        assert isinstance(comparison[task]["mt2kd_beats_scratch"], bool)
    assert 0 < comparison["tagging"]["label_prior"] <= 100


@pytest.mark.slow
def test_demo_report_states_the_training_time_of_each_side(demo):
    seconds = {step["name"]: step["seconds"] for step in demo.results["steps"]}
    mt2kd = sum(seconds[name] for name in ("asr_teacher", "tagging_teacher", "speaker_teacher", "stage1", "mt2kd"))
    report = demo.report.read_text(encoding="utf-8")
    assert f"Training time here: MT2KD {mt2kd:.0f} s in all (asr_teacher {seconds['asr_teacher']:.0f} s" in report
    assert f"multi-task from scratch {seconds['scratch']:.0f} s." in report


@pytest.mark.slow
def test_demo_writes_the_plots_the_report_shows(demo):
    for name in ("loss_curves", "task_bars", "det_curve"):
        relative = demo.results["figures"][name]
        assert (demo.output_dir / relative).read_bytes().startswith(PNG_SIGNATURE), name
        assert f"]({relative})" in demo.report.read_text(encoding="utf-8"), name


@pytest.mark.slow
def test_demo_results_json_holds_evaluate_py_results_of_every_model(demo):
    saved = json.loads((demo.output_dir / "results.json").read_text())
    assert saved["comparison"] == demo.results["comparison"]
    for name, tasks in orchestration.EVALUATED_TASKS.items():
        results = json.loads((demo.output_dir / "results" / f"{name}.json").read_text())
        assert {entry["task"] for entry in results["results"]} == set(tasks), name
    names = [step["name"] for step in saved["steps"]]
    assert names[0] == "corpus" and set(demo.results["steps_per_run"]) <= set(names)
    assert saved["build_s"] > 0


@pytest.mark.slow
def test_demo_model_folder_loads_with_automodel_and_runs_pipelines(demo, test_clip):
    assert isinstance(AutoModel.from_pretrained(demo.model_dir), MT2KDModel)
    audio = {"raw": test_clip["raw"], "sampling_rate": test_clip["sampling_rate"]}
    transcript = pipeline("automatic-speech-recognition", model=str(demo.model_dir))(dict(audio))
    assert isinstance(transcript["text"], str)
    tags = pipeline("audio-classification", model=str(demo.model_dir))(dict(audio), top_k=3)
    assert {tag["label"] for tag in tags} <= set(demo.results["labels"])


@pytest.mark.slow
def test_demo_model_folder_works_with_the_cli(demo, test_clip, tmp_path):
    output = tmp_path / "tags.json"
    assert cli.main(["tag", "--model", str(demo.model_dir), str(test_clip["path"]), "--output", str(output)]) == 0
    assert "tags" in json.loads(output.read_text())["results"][0]


@pytest.mark.slow
def test_demo_model_folder_carries_a_threshold_from_the_dev_speakers_and_no_path_of_this_machine(demo):
    config = json.loads((demo.model_dir / "config.json").read_text())
    calibrated = config["speaker_verification_threshold"]
    assert calibrated["trials"] == "mt2kd-demo dev (every pair)" and calibrated["method"] == "equal_error_rate"
    assert calibrated["num_target_trials"] > 0 and calibrated["num_nontarget_trials"] > 0
    assert str(demo.output_dir) not in (demo.model_dir / "README.md").read_text()
    verifier = pipeline("mt2kd-speaker-verification", model=str(demo.model_dir))
    assert verifier.threshold == calibrated["threshold"]


@pytest.mark.slow
def test_demo_model_folder_exports_to_onnx_and_sherpa_onnx_decodes_our_transcript(demo, test_clip, tmp_path):
    sherpa_onnx = pytest.importorskip("sherpa_onnx", reason="the export extra is not installed")
    from modeling_mt2kd import MT2KDForRNNT
    from processing_mt2kd import MT2KDProcessor

    assert cli.main(["export-onnx", "--model", str(demo.model_dir), "--output", str(tmp_path)]) == 0
    recognizer = sherpa_onnx.OfflineRecognizer.from_transducer(
        *(str(tmp_path / name) for name in ("encoder.onnx", "decoder.onnx", "joiner.onnx", "tokens.txt"))
    )
    stream = recognizer.create_stream()
    stream.accept_waveform(test_clip["sampling_rate"], test_clip["raw"])
    recognizer.decode_stream(stream)
    processor = MT2KDProcessor.from_pretrained(demo.model_dir)
    asr = pipeline(
        "mt2kd-transducer-asr", model=MT2KDForRNNT.from_pretrained(demo.model_dir),
        feature_extractor=processor.feature_extractor, tokenizer=processor.tokenizer,
    )
    ours = asr({"raw": test_clip["raw"], "sampling_rate": test_clip["sampling_rate"]})["text"]
    assert stream.result.text.strip() == ours.strip()


@pytest.mark.slow
def test_a_second_run_reuses_every_step_without_training_or_evaluating(demo, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished step was built again")

    for name in ("synthesize_demo_corpus", "TrainingProcess", "evaluate", "trial_scores", "save_untrained_model",
                 "save_model_folder"):  # fmt: skip
        monkeypatch.setattr(orchestration, name, refuse)
    again = run_demo(demo.output_dir, seed=0, plan=load_plan(packaged_plan("demo_ci.yaml")))
    assert all(step.reused for step in again.steps)
    assert again.results["comparison"] == demo.results["comparison"]
    assert again.results["wall_s"] < 30


def fake_results(seed: int, offset: float) -> dict:
    """The parts of a demo's results.json that reproduce-small reads."""
    comparison = {
        task: {"mt2kd": 10.0 + offset, "scratch": 20.0 + offset, "single_task": 15.0, "untrained": 90.0}
        for task in TASKS
    }
    comparison["tagging"]["label_prior"] = 30.0
    comparison["speaker"]["chance"] = 50.0
    return {"seed": seed, "reported_decoding": "greedy_search", "comparison": comparison, "build_s": 60.0}


def test_reproduce_small_reports_mean_and_sample_standard_deviation(tmp_path):
    per_seed = [fake_results(0, 0.0), fake_results(1, 2.0), fake_results(2, 4.0)]
    report = write_reproduce_report(tmp_path / "report.md", per_seed, ["seed-0", "seed-1", "seed-2"]).read_text()
    assert "| **MT2KD (stage 1 + stage 2)** | 12.00 ± 2.00 | 12.00 ± 2.00 | 12.00 ± 2.00 |" in report
    assert "- WER (asr): **yes**, MT2KD beat multi-task from scratch: 12.00 ± 2.00 vs 22.00 ± 2.00" in report
    assert "- mAP (tagging): **no**" in report  # higher mAP is better: 12 < 22
    assert "better in 3 of 3 seeds" in report and "better in 0 of 3 seeds" in report


def test_reproduce_small_bars_are_means_with_the_spread_over_seeds():
    bars, floors = aggregate_bars([fake_results(0, 0.0), fake_results(1, 2.0)])
    mt2kd = bars["asr"][0]
    assert mt2kd.value == 11.0 and mt2kd.spread == pytest.approx(np.std([10.0, 12.0], ddof=1))
    assert floors["tagging"] == ("label prior", 30.0)


def test_cli_lists_demo_and_reproduce_small(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listing = capsys.readouterr().out
    assert "demo" in listing and "reproduce-small" in listing


def test_build_time_counts_steps_that_ran_side_by_side_once(tmp_path):
    ledger = StepLedger(tmp_path)
    ledger.finish("teacher", "k1", started_at=100.0, ended_at=160.0)
    ledger.finish("baseline", "k2", started_at=120.0, ended_at=200.0)  # overlaps the teacher
    ledger.finish("report", "k3", started_at=500.0, ended_at=510.0)  # after a pause between invocations
    assert ledger.busy_seconds(["teacher", "baseline", "report"]) == 110.0


def test_an_interrupted_step_is_resumed_and_a_step_with_changed_inputs_rebuilt(tmp_path):
    calls = []

    def build(resume):
        calls.append(resume)

    StepLedger(tmp_path).start("stage1", StepLedger(tmp_path).key({"steps": 10}))  # started, never finished
    runner = StepRunner(StepLedger(tmp_path), num_steps=3)
    runner.run("stage1", "stage 1", {"steps": 10}, [], build)
    runner.run("stage1", "stage 1", {"steps": 10}, [], build)
    runner.run("stage1", "stage 1", {"steps": 20}, [], build)
    assert calls == [True, False]  # resumed once, then reused, then rebuilt from the start
    assert [record.reused for record in runner.records] == [False, True, False]


def test_a_failed_training_run_stops_the_demo_with_the_end_of_its_log(tmp_path):
    run = TrainingRun("broken", "broken run", "finetune", {"nonsense": {}, "training": {"output_dir": str(tmp_path)}})
    with pytest.raises(RuntimeError, match="(?s)training run broken failed.*unknown section"):
        TrainingProcess(run, resume=False, threads=1).wait()


def test_a_plan_starts_from_its_base_and_set_overrides_nested_values():
    plan = load_plan(packaged_plan("demo_ci.yaml"), ["steps.stage2=7", "run.optim.lr=0.03"])
    full = load_plan()
    assert plan.steps["stage2"] == 7 and plan.run["optim"]["lr"] == 0.03
    assert plan.run["optim"]["name"] == full.run["optim"]["name"]  # kept from demo.yaml
    assert plan.run["model"]["overrides"]["vocab_size"] == 40  # demo_ci.yaml's own value
    assert plan.corpus["num_speakers"] < full.corpus["num_speakers"]


def test_a_plan_with_a_missing_step_count_names_the_steps_it_needs():
    values = load_plan().to_dict()
    del values["steps"]["asr_teacher"]
    with pytest.raises(ValueError, match="asr_teacher"):
        plan_from_dict(values)


SLEEPING_RUN_SCRIPT = """
import sys, time
from pathlib import Path
from training_mt2kd.demo.ledger import StepLedger
from training_mt2kd.demo.orchestration import StepRunner, train_all
from training_mt2kd.demo.runs import TrainingRun, terminate_raises_system_exit

root = Path(sys.argv[1])
child = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"


class SleepingRun(TrainingRun):
    def command(self):
        return [sys.executable, "-c", child, str(root / "child.pid")]


run = SleepingRun("sleeper", "a run that sleeps", "finetune", {"training": {"output_dir": str(root / "run"), "max_steps": 1}})
with terminate_raises_system_exit():
    train_all({"sleeper": run}, StepRunner(StepLedger(root), num_steps=1), lambda run, done: {}, jobs=1)
"""


def test_a_terminated_demo_stops_its_training_processes(tmp_path):
    demo = subprocess.Popen([sys.executable, "-c", SLEEPING_RUN_SCRIPT, str(tmp_path)])
    pid_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    demo.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=30) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):  # stopped and reaped, not left running as an orphan
        os.kill(child, 0)
