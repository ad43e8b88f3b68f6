"""The recorded full-size `mt2kd demo` and `mt2kd reproduce-small` runs (benchmarks/results/demo.json,
written by benchmarks/record_demo.py) meet issue 18's bar, and were made with today's demo.yaml.

A full run takes minutes on 2 cores, too long for the suite: the suite runs the demo at CI size
(tests/test_demo.py), and these tests hold the recorded real run to issue 18's targets, so a change to
demo.yaml without a new recorded run fails here.
"""

import json
import re
import statistics
from pathlib import Path

import pytest

from training_mt2kd.demo import load_plan
from training_mt2kd.demo.comparison import TASKS, beats
from training_mt2kd.demo.reproduce import DEFAULT_SEEDS

RECORD = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "demo.json"
README = Path(__file__).resolve().parents[1] / "README.md"

MAX_BUILD_S_ON_2_CORES = 15 * 60  # issue 18: a fresh run in at most 15 minutes on 2 CPU cores
MAX_RERUN_S = 10.0  # a second run reuses every step
MIN_SEEDS_WON = 2  # of 3: MT2KD beats multi-task from scratch on each task in at least 2 seeds, and on the mean
# The demo model (seed 0) really works: greedy WER, EER and mAP against the label prior (issue 18).
MAX_DEMO_WER = 30.0  # percent
MAX_DEMO_EER = 15.0  # percent, chance is 50
MIN_DEMO_MAP_OVER_PRIOR = 3.0  # times the label prior's mAP


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


def test_a_fresh_demo_built_in_at_most_15_minutes_on_2_cores(record):
    assert record["demo"]["cpu_cores"] == 2 and record["machine"]["cpu_cores"] == 2
    assert not any(record["demo"]["step_seconds"].get(name) is None for name in ("corpus", "stage1", "mt2kd"))
    assert record["demo"]["build_s"] < MAX_BUILD_S_ON_2_CORES


def test_the_readme_states_the_recorded_build_time(record):
    stated = re.search(r"\((\d+) minutes measured on 2 cores", README.read_text(encoding="utf-8"))
    assert stated is not None, "README.md no longer states the demo's measured time"
    assert int(stated.group(1)) == round(record["demo"]["build_s"] / 60)


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


def test_a_second_run_reused_every_step_within_seconds(record):
    assert record["demo"]["rerun"]["built_steps"] == []
    assert record["demo"]["rerun"]["wall_s"] <= MAX_RERUN_S


@pytest.mark.parametrize("task", TASKS)
def test_mt2kd_beats_multi_task_from_scratch_in_most_seeds_and_on_the_mean(record, task):
    per_seed = [comparison[task] for comparison in record["reproduce_small"]["per_seed"].values()]
    assert sum(figures["mt2kd_beats_scratch"] for figures in per_seed) >= MIN_SEEDS_WON, (task, per_seed)
    mt2kd, scratch = (statistics.fmean(figures[model] for figures in per_seed) for model in ("mt2kd", "scratch"))
    assert beats(task, mt2kd, scratch), (task, mt2kd, scratch)


def test_the_demo_record_is_seed_0_of_reproduce_small(record):
    assert record["demo"]["seed"] == 0
    assert record["demo"]["comparison"] == record["reproduce_small"]["per_seed"]["seed-0"]


def test_the_demo_model_verifies_speakers_and_tags_sound_events(record):
    comparison = record["demo"]["comparison"]
    assert comparison["speaker"]["mt2kd"] <= MAX_DEMO_EER, comparison["speaker"]
    tagging = comparison["tagging"]
    assert tagging["mt2kd"] >= MIN_DEMO_MAP_OVER_PRIOR * tagging["label_prior"], tagging


def test_the_demo_model_transcribes_with_at_most_30_percent_wer(record):
    assert record["demo"]["reported_decoding"] in ("greedy_search", "ctc_greedy")
    assert record["demo"]["comparison"]["asr"]["mt2kd"] <= MAX_DEMO_WER, record["demo"]["comparison"]["asr"]
