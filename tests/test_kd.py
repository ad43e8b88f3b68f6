"""Stage 1 end to end: `training/kd.py` with tiny teachers of the real classes on real recordings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modeling_mt2kd import MT2KDForDistillation
from processing_mt2kd import MT2KDFeatureExtractor, load_audio
from training_mt2kd.recipe import kd
from training_mt2kd.recipe.config import build_argument_parser, load_run_config
from training_mt2kd.recipe.target_cache import TargetCache, compute_targets

from .conftest import DATA_DIR, REPO_ROOT
from .tiny_teachers import save_tiny_teachers

LABELS = ["Speech", "Music", "Dog", "Bird"]
CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage1.yaml"
AN4 = {
    "name": "an4",
    "source": str(DATA_DIR / "an4" / "metadata.csv"),
    "columns": {"audio": "path", "id": "path", "duration": "duration_s"},
    "task": "distill",
}


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, Path]:
    return save_tiny_teachers(tmp_path_factory.mktemp("teachers"), LABELS)


def kd_arguments(teachers: dict[str, Path], output_dir: Path, max_steps: int, *extra: str) -> list[str]:
    return [
        "--config", str(CONFIG),
        "--output_dir", str(output_dir),
        "--max_steps", str(max_steps),
        "--set", f"data.train={json.dumps([AN4])}",
        "--set", "model.overrides={id2label: {0: Speech, 1: Music, 2: Dog, 3: Bird}}",
        "--set", f"teachers.whisper={{name_or_path: {teachers['whisper']}}}",
        "--set", f"teachers.tagging={{name_or_path: {teachers['tagger']}}}",
        "--set", f"teachers.speaker={{name_or_path: {teachers['speaker']}}}",
        *extra,
    ]


def history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def mean_loss(records: list[dict], name: str) -> float:
    return sum(record[name] for record in records) / len(records)


@pytest.mark.slow
def test_all_three_distillation_losses_fall_and_the_result_loads(tmp_path, teachers):
    final = kd.main(kd_arguments(teachers, tmp_path / "run", 30))
    records = history(tmp_path / "run")
    # Ratios measured on this setup (30 steps, deterministic): whisper 0.58, tagging 0.9 (soft-target BCE cannot
    # fall below the teacher's entropy), speaker 0.06; the bounds leave room for noise.
    for name, ratio in (("whisper_loss", 0.8), ("tagging_loss", 0.96), ("speaker_loss", 0.5)):
        assert mean_loss(records[-6:], name) < ratio * mean_loss(records[:6], name), name
    model = MT2KDForDistillation.from_pretrained(final)
    assert model.config.whisper_dim == 16 and model.config.speaker_embedding_dim == 8  # from the teachers
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert summary["steps"] == 30 and summary["skipped_nonfinite_steps"] == 0
    record = json.loads((final / "mt2kd_training.json").read_text())  # what the model card says it saw
    assert record["stage"] == "stage1" and set(record["teachers"]) == {"asr", "tagging", "speaker"}
    assert str(tmp_path) not in json.dumps(record)


def test_resume_from_a_mid_run_checkpoint_ends_with_the_same_weights(tmp_path, teachers):
    every_4 = ("--set", "training.save_every_steps=4", "--set", "training.keep_checkpoints=5")
    kd.main(kd_arguments(teachers, tmp_path / "straight", 8, *every_4))
    kd.main(kd_arguments(
        teachers, tmp_path / "resumed", 8, *every_4,
        "--resume_from", str(tmp_path / "straight" / "checkpoints" / "checkpoint-4"),
    ))
    for folder in ("final", "checkpoints/checkpoint-8"):
        straight = load_file(tmp_path / "straight" / folder / "model.safetensors")
        resumed = load_file(tmp_path / "resumed" / folder / "model.safetensors")
        assert straight.keys() == resumed.keys()
        for key in straight:
            assert torch.equal(straight[key], resumed[key]), f"{folder}: {key}"
    assert history(tmp_path / "resumed")[-1] == history(tmp_path / "straight")[-1]


def test_cached_and_on_the_fly_targets_give_the_same_loss(tmp_path, teachers):
    cache_dir = tmp_path / "cache"
    kd.main(kd_arguments(teachers, tmp_path / "cached", 1, "--set", f"teachers.cache_dir={cache_dir}"))
    cache = TargetCache(cache_dir)
    assert len(cache) == 38  # every an4 utterance was extracted once
    run_config = load_run_config(build_argument_parser("").parse_args(kd_arguments(teachers, tmp_path / "x", 1)))
    loaded = kd.load_teachers(run_config, LABELS, torch.device("cpu"))
    ids = cache.ids[:3]
    waveforms = [torch.from_numpy(load_audio(DATA_DIR / "an4" / i)[0]) for i in ids]
    lengths = torch.tensor([len(w) for w in waveforms])
    batch = torch.nn.utils.rnn.pad_sequence(waveforms, batch_first=True)
    on_the_fly = compute_targets(loaded, batch, lengths)
    cached = cache.get(ids)
    model = MT2KDForDistillation.from_pretrained(tmp_path / "cached" / "final").eval()
    features = MT2KDFeatureExtractor()([w.numpy() for w in waveforms], sampling_rate=16000, return_tensors="pt")
    losses = []
    for targets in (on_the_fly, cached):
        with torch.no_grad():
            out = model(
                features["input_features"], features["attention_mask"],
                whisper_targets=targets["whisper"].values, tagging_targets=targets["tagging"].values,
                speaker_targets=targets["speaker"].values,
            )
        losses.append(out)
    for name in ("whisper_loss", "tagging_loss", "speaker_loss"):
        torch.testing.assert_close(getattr(losses[0], name), getattr(losses[1], name), rtol=2e-3, atol=2e-3)


@pytest.mark.slow
def test_two_process_cpu_run_keeps_identical_weights_on_both_ranks(tmp_path, teachers):
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf")}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO_ROOT / "training" / "kd.py"),
        *kd_arguments(teachers, tmp_path / "ddp", 10),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((tmp_path / "ddp" / "run_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert len(summary["weights_digest_per_rank"]) == 2
    assert len(set(summary["weights_digest_per_rank"])) == 1
    records = history(tmp_path / "ddp")
    assert mean_loss(records[-3:], "loss") < mean_loss(records[:3], "loss")
    MT2KDForDistillation.from_pretrained(tmp_path / "ddp" / "final")
