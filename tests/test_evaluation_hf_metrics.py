"""The `evaluate` modules the package ships (mt2kd_wer, mt2kd_map, mt2kd_speaker_verification): they load offline from
the installed package files, equal the package's metric functions, and score an `evaluate.evaluator` ASR run of an
MT2KD model folder on a `datasets.Dataset` of ../shared/data recordings."""

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transformers import pipeline
from transformers.utils import logging

from training_mt2kd.evaluation.metrics import (
    METRIC_NAMES,
    TextNormalizer,
    equal_error_rate,
    load_metric,
    mean_average_precision,
    metric_path,
    min_dcf,
    word_error_rate,
)

from .conftest import DATA_DIR, REPO_ROOT
from .test_pipelines import save_tiny_mt2kd_folder

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
# Recordings with transcripts, of several rates: (metadata folder, path in that folder).
RECORDINGS = [
    ("an4", "wav/fash/an253-fash-b.wav"),  # 16 kHz
    ("fsdd", "recordings/0_george_0.wav"),  # 8 kHz, 0.3 s
    ("speech_misc", "ljspeech/LJ003-0182.wav"),  # 22.05 kHz
    ("speech_misc", "librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav"),  # 16 kHz
]


@pytest.fixture(scope="module")
def metrics():
    """The three modules, loaded with the Hub switched off."""
    import evaluate

    with pytest.MonkeyPatch.context() as patch:
        for name, value in OFFLINE.items():
            patch.setenv(name, value)
        patch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
        yield {name: load_metric(name) for name in METRIC_NAMES}


def test_modules_load_offline_from_the_package_files(tmp_path):
    """A fresh interpreter with the Hub unreachable and an empty module cache: every module loads from its packaged
    folder (evaluate copies the script into the cache) and computes."""
    script = textwrap.dedent(
        """
        import evaluate
        from training_mt2kd.evaluation.metrics import load_metric, metric_path

        print(load_metric("mt2kd_wer").compute(predictions=["hello word"], references=["Hello, world!"])["wer"])
        print(evaluate.load(metric_path("mt2kd_map")).compute(
            predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]])["mean_average_precision"])
        print(load_metric("mt2kd_speaker_verification").compute(
            predictions=[0.9, 0.2, 0.6, 0.1], references=[1, 1, 0, 0])["eer"])
        """
    )
    environment = {
        **os.environ,
        **OFFLINE,
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens there: any Hub request would fail
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_METRICS_CACHE": str(tmp_path / "metrics"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["0.5", "1.0", "0.5"]
    copied = {path.name for path in (tmp_path / "modules").rglob("mt2kd_*.py")}
    assert copied == {f"{name}.py" for name in METRIC_NAMES}


def test_metric_path_is_the_folder_evaluate_loads():
    for name in METRIC_NAMES:
        folder = Path(metric_path(name))
        assert folder.name == name and (folder / f"{name}.py").is_file()
    with pytest.raises(ValueError, match="unknown MT2KD metric 'wer'.*mt2kd_wer, mt2kd_map"):
        metric_path("wer")


def test_setup_ships_the_modules_as_package_data(tmp_path):
    """`setup.py build_py` (what a wheel contains) copies every module script."""
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = tmp_path / "lib" / "training_mt2kd" / "evaluation" / "metrics" / "hf"
    for name in METRIC_NAMES:
        assert (built / name / f"{name}.py").is_file(), name


@pytest.mark.parametrize(
    "normalize",
    [True, False, TextNormalizer(case="lower", remove_punctuation=False)],
    ids=["default", "whitespace-only", "lower-keep-punctuation"],
)
def test_wer_module_equals_word_error_rate(metrics, normalize):
    references = ["Hello, world!", "the quick brown fox", "", "Don't stop  believing"]
    hypotheses = ["hello word", "the quick brown box jumps", "extra words", "don't STOP"]
    result = metrics["mt2kd_wer"].compute(predictions=hypotheses, references=references, normalize=normalize)
    expected = word_error_rate(references, hypotheses, normalize=normalize)
    assert result == {
        "wer": expected.wer,
        "substitutions": expected.substitutions,
        "deletions": expected.deletions,
        "insertions": expected.insertions,
        "num_words": expected.num_words,
    }


def test_wer_module_keeps_the_functions_errors(metrics):
    with pytest.raises(ValueError, match="no words"):
        metrics["mt2kd_wer"].compute(predictions=["a"], references=["!!"])


def test_map_module_equals_mean_average_precision(metrics):
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((12, 5)), 1).astype(np.float32)  # rounding makes tied scores
    targets = rng.random((12, 5)) < 0.4
    targets[:, 3] = False  # a class without positives: NaN, left out of the mean
    targets[0, :3] = True
    result = metrics["mt2kd_map"].compute(predictions=scores, references=targets.astype(np.int64))
    expected = mean_average_precision(scores, targets)
    assert result["mean_average_precision"] == expected.mean_average_precision
    assert result["num_classes_scored"] == expected.num_classes_scored == 4
    np.testing.assert_array_equal(np.asarray(result["per_class"]), expected.per_class)
    # The demo's label prior: one constant (read-only, broadcast) row for every clip.
    frequencies = targets.mean(axis=0)
    prior = metrics["mt2kd_map"].compute(predictions=np.broadcast_to(frequencies, targets.shape), references=targets)
    assert prior["mean_average_precision"] == mean_average_precision(
        np.broadcast_to(frequencies, targets.shape), targets
    ).mean_average_precision


def test_map_module_rejects_soft_targets(metrics):
    with pytest.raises(ValueError, match="only 0 and 1"):
        metrics["mt2kd_map"].compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0.5, 1]])


def test_speaker_verification_module_equals_eer_and_min_dcf(metrics):
    rng = np.random.default_rng(1)
    labels = rng.random(200) < 0.3
    scores = np.round(rng.normal(size=200) + 1.5 * labels, 2)  # overlapping classes, tied scores
    verification = metrics["mt2kd_speaker_verification"]
    one = verification.compute(predictions=scores, references=labels)
    assert one == {"eer": equal_error_rate(scores, labels), "min_dcf": min_dcf(scores, labels, 0.01)}
    several = verification.compute(predictions=scores, references=labels, p_target=[0.01, 0.05], c_miss=2.0)
    assert several["eer"] == one["eer"]
    assert several["min_dcf"] == [min_dcf(scores, labels, 0.01, c_miss=2.0), min_dcf(scores, labels, 0.05, c_miss=2.0)]


def test_speaker_verification_module_needs_both_kinds_of_trial(metrics):
    with pytest.raises(ValueError, match="need both target and non-target"):
        metrics["mt2kd_speaker_verification"].compute(predictions=[0.1, 0.9], references=[1, 1])


def _decoded(path: Path) -> dict:
    waveform, sampling_rate = soundfile.read(path, dtype="float32", always_2d=True)
    return {"array": waveform.mean(axis=1), "sampling_rate": sampling_rate}


def _transcript(folder: str, path: str) -> str:
    with open(DATA_DIR / folder / "metadata.csv", newline="", encoding="utf-8") as file:
        return next(row["transcript"] for row in csv.DictReader(file) if row["path"] == path)


def test_asr_evaluator_on_shared_recordings_scores_with_the_packaged_wer(metrics, tmp_path):
    """evaluate.evaluator("automatic-speech-recognition") on a Dataset of soundfile-decoded recordings (8, 16 and
    22.05 kHz) and an MT2KD folder, scored by mt2kd_wer: the same WER as the pipeline's transcripts scored directly."""
    import evaluate
    from datasets import Dataset

    logging.set_verbosity_error()
    folder = str(save_tiny_mt2kd_folder(tmp_path / "model"))
    dataset = Dataset.from_dict(
        {
            "audio": [_decoded(DATA_DIR / name / path) for name, path in RECORDINGS],
            "text": [_transcript(name, path) for name, path in RECORDINGS],
        }
    ).with_format("numpy", columns=["audio"], output_all_columns=True)

    results = evaluate.evaluator("automatic-speech-recognition").compute(
        model_or_pipeline=folder, data=dataset, input_column="audio", label_column="text", metric=metrics["mt2kd_wer"]
    )

    asr = pipeline("automatic-speech-recognition", model=folder)
    hypotheses = [asr(example["audio"])["text"] for example in dataset]
    expected = word_error_rate(list(dataset["text"]), hypotheses)
    assert results["wer"] == expected.wer and results["num_words"] == expected.num_words
    assert expected.num_words == sum(len(text.split()) for text in dataset["text"]) > 10
    assert results["samples_per_second"] > 0
