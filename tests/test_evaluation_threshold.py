"""Speaker-verification threshold from data: calibrated on dev trials, stored in the folder, used by default by the
pipeline and `mt2kd verify`; without one, scores and no decision (issue 16, item 5)."""

import json

import numpy as np
import pytest
from transformers import pipeline
from transformers.utils import logging

import processing_mt2kd  # noqa: F401 - registers the pipelines
from processing_mt2kd.pipelines import CALIBRATED_THRESHOLD_KEY, read_calibrated_threshold
from training_mt2kd.cli.main import main
from training_mt2kd.evaluation.threshold import calibrate_folder_threshold, calibrate_threshold

from .test_pipelines import save_tiny_mt2kd_folder

# Four target and four non-target trials; 0.6 (non-target) sits above 0.55 (target): no threshold separates them.
SCORES = [0.9, 0.8, 0.55, 0.7, 0.6, 0.5, 0.4, 0.3]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]
DEV_TRIALS = (
    "0_george_0.wav 0_george_1.wav 1\n"
    "0_george_0.wav 0_jackson_0.wav 0\n"
    "1_george_0.wav 1_george_1.wav 1\n"
    "1_george_0.wav 1_jackson_0.wav 0\n"
    "0_jackson_0.wav 0_jackson_1.wav 1\n"
    "0_jackson_1.wav 1_george_1.wav 0\n"
)


def test_the_equal_error_rate_threshold_balances_misses_and_false_accepts():
    calibrated = calibrate_threshold(SCORES, LABELS, "dev.txt")
    assert calibrated.method == "equal_error_rate" and calibrated.threshold == pytest.approx(0.6)
    assert (calibrated.false_accept_rate, calibrated.miss_rate) == (0.25, 0.25)
    assert (calibrated.num_target_trials, calibrated.num_nontarget_trials) == (4, 4)


def test_a_target_false_accept_rate_gives_the_lowest_threshold_that_meets_it():
    calibrated = calibrate_threshold(SCORES, LABELS, "dev.txt", target_false_accept_rate=0.1)
    assert calibrated.method == "false_accept_rate" and calibrated.threshold == pytest.approx(0.7)
    assert calibrated.false_accept_rate == 0.0 and calibrated.miss_rate == 0.25


def test_a_false_accept_rate_target_must_be_a_fraction():
    with pytest.raises(ValueError, match="target_false_accept_rate must be a fraction"):
        calibrate_threshold(SCORES, LABELS, "dev.txt", target_false_accept_rate=1.0)


@pytest.fixture(scope="module")
def uncalibrated_folder(tmp_path_factory):
    logging.set_verbosity_error()
    return save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd"))


@pytest.fixture(scope="module")
def calibrated_folder(tmp_path_factory, data_dir):
    folder = save_tiny_mt2kd_folder(tmp_path_factory.mktemp("calibrated"))
    trials = tmp_path_factory.mktemp("dev") / "dev_trials.txt"
    trials.write_text(DEV_TRIALS)
    calibrated = calibrate_folder_threshold(folder, trials, audio_root=data_dir / "fsdd/recordings")
    return folder, calibrated


def test_calibration_is_stored_in_the_folder_config(calibrated_folder):
    folder, calibrated = calibrated_folder
    stored = json.loads((folder / "config.json").read_text())[CALIBRATED_THRESHOLD_KEY]
    assert stored["threshold"] == calibrated.threshold and stored["trials"] == "dev_trials.txt"
    assert (stored["num_target_trials"], stored["num_nontarget_trials"]) == (3, 3)


def test_the_pipeline_decides_with_the_calibrated_threshold_by_default(calibrated_folder, data_dir):
    folder, calibrated = calibrated_folder
    verifier = pipeline("mt2kd-speaker-verification", model=str(folder))
    assert verifier.threshold == calibrated.threshold
    assert read_calibrated_threshold(verifier.model.config) == calibrated
    result = verifier.verify(data_dir / "fsdd/recordings/0_george_0.wav", data_dir / "fsdd/recordings/2_george_0.wav")
    assert result["threshold"] == calibrated.threshold
    assert result["same_speaker"] == (result["score"] >= calibrated.threshold)


def test_without_a_calibrated_threshold_the_pipeline_gives_scores_and_says_why(uncalibrated_folder, data_dir):
    verifier = pipeline("mt2kd-speaker-verification", model=str(uncalibrated_folder))
    recording = data_dir / "fsdd/recordings/0_george_0.wav"
    logging.set_verbosity_warning()
    try:
        verifier.score_trials([(recording, recording)])  # logs the reason once (transformers' warning_once)
    finally:
        logging.set_verbosity_error()
    result = verifier.verify(recording, recording)
    assert result["same_speaker"] is None and result["threshold"] is None
    assert result["score"] == pytest.approx(1.0, abs=1e-5)


def test_mt2kd_verify_uses_the_calibrated_threshold_and_reports_its_source(capsys, calibrated_folder, data_dir):
    folder, calibrated = calibrated_folder
    recordings = data_dir / "fsdd/recordings"
    enrollment, test = str(recordings / "0_george_0.wav"), str(recordings / "3_george_0.wav")
    status = main(["verify", "--model", str(folder), enrollment, test])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["threshold"] == calibrated.threshold
    assert report["threshold_source"] == "calibrated on dev_trials.txt (equal error rate)"
    (result,) = report["results"]
    assert result["same_speaker"] == (result["score"] >= calibrated.threshold)


def test_mt2kd_verify_without_a_threshold_reports_scores_and_no_decision(capsys, uncalibrated_folder, data_dir):
    recording = str(data_dir / "fsdd/recordings/0_george_0.wav")
    status = main(["verify", "--model", str(uncalibrated_folder), recording, recording])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert status == 0 and report["threshold"] is None and report["results"][0]["same_speaker"] is None
    assert "no calibrated speaker-verification threshold" in captured.err
    assert np.isfinite(report["results"][0]["score"])


# The evaluation runner


def test_evaluation_with_calibrate_threshold_stores_the_dev_threshold(tmp_path, data_dir):
    from training_mt2kd.evaluation.config import evaluation_config_from_dict
    from training_mt2kd.evaluation.runner import evaluate

    folder = save_tiny_mt2kd_folder(tmp_path / "model")
    (tmp_path / "dev_trials.txt").write_text(DEV_TRIALS)
    entry = {"task": "speaker", "dataset": "fsdd", "split": "dev", "trials": "dev_trials.txt",
             "root": str(data_dir / "fsdd/recordings"), "calibrate_threshold": True}
    config = evaluation_config_from_dict({"evaluations": [entry]}, tmp_path, where="eval.yaml")
    results = evaluate(folder, config, device="cpu")["results"]
    (threshold_entry,) = [entry for entry in results if entry["metric"] == "threshold"]
    stored = read_calibrated_threshold(json.loads((folder / "config.json").read_text()))
    assert stored.threshold == threshold_entry["value"] and stored.trials == "dev_trials.txt"
    assert stored.method == "equal_error_rate" and stored.num_target_trials == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"calibrate_threshold": "yes"}, "calibrate_threshold must be true or false"),
        ({"target_false_accept_rate": 0.01}, "given with calibrate_threshold: true"),
        ({"calibrate_threshold": True, "target_false_accept_rate": 5.0}, "must be a fraction in"),
    ],
)
def test_bad_calibration_options_are_refused_when_the_config_is_read(tmp_path, extra, message):
    from training_mt2kd.evaluation.config import evaluation_config_from_dict

    (tmp_path / "dev.txt").write_text(DEV_TRIALS)
    entry = {"task": "speaker", "dataset": "fsdd", "trials": "dev.txt", **extra}
    with pytest.raises(ValueError, match=message):
        evaluation_config_from_dict({"evaluations": [entry]}, tmp_path, where="eval.yaml")
