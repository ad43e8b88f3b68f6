"""training_mt2kd.evaluation.cli (`training/evaluate.py`, `mt2kd evaluate`): results JSON schema and usage errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from training_mt2kd.evaluation.cli import main

from .evaluation_helpers import (
    datasets_cache_in_tmp,
    REPO_ROOT,
    RESULT_KEYS,
    tokenizer,
    write_manifest,
    an4_manifest,
    random_multitask,
    save_model_folder,
)


def test_cli_writes_results_json_in_the_agreed_schema(tmp_path, data_dir, tokenizer, random_multitask):
    model_dir = save_model_folder(random_multitask, tmp_path / "model", tokenizer)
    write_manifest(
        tmp_path / "tags.csv",
        [
            {"path": "esc50/3-103051-C-19.wav", "label": "Thunderstorm"},
            {"path": "librosa/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg", "label": "Bird"},
        ],
    )
    files = [
        "recordings/0_george_0.wav",
        "recordings/1_george_1.wav",
        "recordings/0_jackson_0.wav",
        "recordings/1_jackson_1.wav",
        "recordings/0_lucas_0.wav",
    ]
    trial_lines = [
        f"{1 if a.split('_')[1] == b.split('_')[1] else 0} {a} {b}" for i, a in enumerate(files) for b in files[i + 1 :]
    ]
    (tmp_path / "trials.txt").write_text("\n".join(trial_lines) + "\n")
    config = tmp_path / "eval.yaml"
    config.write_text(f"""
batch_duration_s: 20
evaluations:
  - {{task: asr, dataset: an4, split: all, source: an4.csv, root: {data_dir}/an4,
      columns: {{audio: path, text: transcript}}, decoding: [ctc_greedy, greedy_search, modified_beam_search]}}
  - {{task: tagging, dataset: sound_events, split: all, source: tags.csv, root: {data_dir}/sound_events,
      columns: {{audio: path, labels: label}}}}
  - {{task: speaker, dataset: fsdd, trials: trials.txt, root: {data_dir}/fsdd}}
""")
    an4_manifest(tmp_path)
    output = tmp_path / "out" / "results.json"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets")}

    completed = subprocess.run(
        [
            sys.executable,
            "training/evaluate.py",
            "--model",
            str(model_dir),
            "--config",
            str(config),
            "--output",
            str(output),
            "--device",
            "cpu",
            "--batch_duration_s",
            "8",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(output.read_text())
    assert set(results) == {"model", "results"} and results["model"] == str(model_dir)
    assert [
        (entry["task"], entry["metric"], entry.get("decoding"), entry.get("p_target")) for entry in results["results"]
    ] == [
        ("asr", "wer", "ctc_greedy", None),
        ("asr", "wer", "greedy_search", None),
        ("asr", "wer", "modified_beam_search", None),
        ("tagging", "map", None, None),
        ("speaker", "eer", None, None),
        ("speaker", "min_dcf", None, 0.01),
        ("speaker", "min_dcf", None, 0.05),
    ]
    for entry in results["results"]:
        assert list(entry) == RESULT_KEYS[entry["metric"]]
        assert isinstance(entry["value"], float) and np.isfinite(entry["value"])
        assert entry["dataset_config"] is None
    assert [entry.get("num_examples") for entry in results["results"]] == [4, 4, 4, 2, len(trial_lines), None, None]




def test_cli_reports_a_bad_config_as_a_usage_error(tmp_path, capsys):
    config = tmp_path / "eval.yaml"
    config.write_text("evaluations:\n  - {task: diarization, dataset: x}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tmp_path), "--config", str(config), "--output", str(tmp_path / "results.json")])
    assert exit_info.value.code == 2
    assert "task 'diarization' is not one of ['asr', 'tagging', 'speaker']" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
