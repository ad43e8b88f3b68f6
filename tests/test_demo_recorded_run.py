"""The recorded full-size `mt2kd demo` and `mt2kd reproduce-small` runs (benchmarks/results/demo.json,
written by benchmarks/record_demo.py) meet issue 6's bar, and were made with today's demo.yaml.

A full run takes about a quarter of an hour on 2 cores, too long for the suite: the suite runs the
demo at CI size (tests/test_demo.py), and these tests hold the recorded real run to the margins it
showed, so a change to demo.yaml without a new recorded run fails here.
"""

import json
from pathlib import Path

import pytest

from training_mt2kd.demo import load_plan
from training_mt2kd.demo.comparison import TASKS
from training_mt2kd.demo.reproduce import DEFAULT_SEEDS

RECORD = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "demo.json"

MAX_BUILD_S_ON_2_CORES = 20 * 60  # issue 6: a fresh run in under 20 minutes on 2 CPU cores
# Margins every recorded run met, a little below the worst seed (benchmarks/RESULTS.md): MT2KD's WER
# 75 / 81 / 94 % against 100 / 464 / 590 % untrained; mAP 52 / 61 / 56 % against label priors of 15 / 14 / 15 %;
# EER 25 / 24 / 23 %.
MIN_WER_GAIN_OVER_UNTRAINED = 20.0  # percentage points
MAX_WER = 95.0  # percent; an empty transcript scores 100
MIN_MAP_GAIN_OVER_PRIOR = 30.0  # percentage points
MAX_EER = 30.0  # percent, chance is 50


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


def _comparisons(record: dict) -> dict[str, dict]:
    """Every recorded comparison: the demo's and each reproduce-small seed's."""
    return {"demo": record["demo"]["comparison"], **record["reproduce_small"]["per_seed"]}


def test_the_recorded_run_used_the_packaged_demo_plan(record):
    assert record["demo"]["plan"] == load_plan().to_dict(), (
        "training/configs/demo.yaml changed since the recorded run: run `mt2kd demo` and "
        "`mt2kd reproduce-small` again and record them with benchmarks/record_demo.py"
    )


def test_a_fresh_demo_built_in_under_20_minutes_on_2_cores(record):
    assert record["demo"]["cpu_cores"] == 2 and record["machine"]["cpu_cores"] == 2
    assert not any(record["demo"]["step_seconds"].get(name) is None for name in ("corpus", "stage1", "mt2kd"))
    assert record["demo"]["build_s"] < MAX_BUILD_S_ON_2_CORES


def test_reproduce_small_recorded_three_seeds(record):
    assert record["reproduce_small"]["seeds"] == list(DEFAULT_SEEDS)
    assert sorted(record["reproduce_small"]["per_seed"]) == [f"seed-{seed}" for seed in DEFAULT_SEEDS]


@pytest.mark.parametrize("task", TASKS)
def test_every_recorded_comparison_has_a_verdict_matching_its_figures(record, task):
    lower_is_better = task in ("asr", "speaker")
    for name, comparison in _comparisons(record).items():
        figures = comparison[task]
        expected = figures["mt2kd"] < figures["scratch"] if lower_is_better else figures["mt2kd"] > figures["scratch"]
        assert figures["mt2kd_beats_scratch"] == expected, (name, task)


def test_mt2kd_wer_is_far_below_the_untrained_model_in_every_recorded_run(record):
    for name, comparison in _comparisons(record).items():
        asr = comparison["asr"]
        assert asr["mt2kd"] <= asr["untrained"] - MIN_WER_GAIN_OVER_UNTRAINED, (name, asr)
        assert asr["mt2kd"] <= MAX_WER, (name, asr)


def test_mt2kd_map_is_above_the_label_prior_in_every_recorded_run(record):
    for name, comparison in _comparisons(record).items():
        tagging = comparison["tagging"]
        assert tagging["mt2kd"] >= tagging["label_prior"] + MIN_MAP_GAIN_OVER_PRIOR, (name, tagging)


def test_mt2kd_eer_is_below_50_percent_in_every_recorded_run(record):
    for name, comparison in _comparisons(record).items():
        speaker = comparison["speaker"]
        assert speaker["mt2kd"] <= MAX_EER < speaker["chance"], (name, speaker)
