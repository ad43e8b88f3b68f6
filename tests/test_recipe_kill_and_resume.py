"""Interrupted runs: a training or target-extraction process killed with SIGKILL at any point, including
in the middle of writing a checkpoint or a target shard, leaves the previous checkpoint (shard) intact, and resuming
ends exactly where an uninterrupted run ends."""

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training_mt2kd.recipe import finetune, kd, loop
from training_mt2kd.recipe import target_cache as target_cache_module
from training_mt2kd.recipe.loop import latest_checkpoint
from training_mt2kd.recipe.target_cache import TargetCache, TargetCacheWriter

from .conftest import DATA_DIR, REPO_ROOT
from .tiny_teachers import save_tiny_teachers

STAGE2_CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"
STAGE1_CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage1.yaml"
FSDD_TRAIN = {
    "name": "fsdd", "source": str(DATA_DIR / "fsdd" / "metadata.csv"), "split": "train", "task": "asr+speaker",
    "columns": {"audio": "path", "id": "path", "text": "transcript", "speaker": "speaker", "duration": "duration_s",
                "split": "split"},
}
AN4 = {"name": "an4", "source": str(DATA_DIR / "an4" / "metadata.csv"),
       "columns": {"audio": "path", "id": "path", "duration": "duration_s"}, "task": "distill"}
LABELS = ["Speech", "Music", "Dog", "Bird"]
STEPS = 6
SHARD_SIZE = 4

# A real training (or extraction) process, optionally made to hang half-way through writing one file so the test
# can SIGKILL it exactly there: PAUSE_IN names the folder or file, PAUSE_MARKER the file that says "hanging now".
DRIVER = r'''
import functools, os, sys, time
from pathlib import Path

import torch

torch.set_num_threads(1)
pause_in, marker = os.environ.get("PAUSE_IN"), os.environ.get("PAUSE_MARKER")


def hang_half_written(path):
    with open(path, "r+b") as written:
        written.truncate(os.path.getsize(path) // 2)
    Path(marker).write_text(str(path))
    time.sleep(600)


if sys.argv[1] == "finetune":
    import accelerate.checkpointing as checkpointing

    save = checkpointing.save

    def save_and_hang(obj, path, *args, **kwargs):  # accelerate's writer of every file of save_state
        save(obj, path, *args, **kwargs)
        if pause_in and pause_in in str(path) and Path(path).name == "optimizer.bin":
            hang_half_written(path)

    checkpointing.save = save_and_hang
    from training_mt2kd.recipe import finetune

    finetune.main(sys.argv[2:])
else:
    from training_mt2kd.recipe import kd, target_cache
    from training_mt2kd.data import stage_data
    from training_mt2kd.recipe.config import build_argument_parser, load_run_config

    save_file = target_cache.save_file

    def save_file_and_hang(tensors, path, metadata=None):  # the shard writer
        save_file(tensors, path, metadata=metadata)
        if pause_in and Path(path).name.startswith(pause_in):
            hang_half_written(path)

    target_cache.save_file = save_file_and_hang
    kd.TargetCacheWriter = functools.partial(target_cache.TargetCacheWriter, shard_size=int(os.environ["SHARD_SIZE"]))
    config = load_run_config(build_argument_parser("").parse_args(sys.argv[2:]))
    labels = ["Speech", "Music", "Dog", "Bird"]
    teachers = kd.load_teachers(config, labels, torch.device("cpu"))
    kd.fill_target_cache(config.teachers.cache_dir, teachers, stage_data.build_training_data(config, labels), "cpu")
'''


def finetune_arguments(output_dir: Path, *extra: str) -> list[str]:
    return ["--config", str(STAGE2_CONFIG), "--output_dir", str(output_dir), "--max_steps", str(STEPS),
            "--set", f"data.train={json.dumps([FSDD_TRAIN])}", "--set", "training.save_every_steps=2",
            "--set", "training.keep_checkpoints=5", "--set", "training.log_every_steps=1", *extra]


def extraction_arguments(teachers: dict[str, Path], cache_dir: Path) -> list[str]:
    return ["--config", str(STAGE1_CONFIG), "--output_dir", str(cache_dir.parent / "unused"),
            "--set", f"data.train={json.dumps([AN4])}",
            "--set", "model.overrides={id2label: {0: Speech, 1: Music, 2: Dog, 3: Bird}}",
            "--set", f"teachers.whisper={{name_or_path: {teachers['whisper']}}}",
            "--set", f"teachers.tagging={{name_or_path: {teachers['tagger']}}}",
            "--set", f"teachers.speaker={{name_or_path: {teachers['speaker']}}}",
            "--set", f"teachers.cache_dir={cache_dir}"]


def driver_command(tmp_path: Path, job: str, arguments: list[str]) -> list[str]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return [sys.executable, str(script), job, *arguments]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SHARD_SIZE": str(SHARD_SIZE), **extra}


def run_to_completion(command: list[str], cwd: Path, **extra_env: str) -> None:
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=environment(**extra_env),
                            cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]


def kill_when(command: list[str], cwd: Path, ready, timeout_s: float = 300, **extra_env: str) -> None:
    """Start `command`, wait until `ready()` holds, then SIGKILL it (no chance to clean up)."""
    process = subprocess.Popen(command, env=environment(**extra_env), cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None:
                pytest.fail(f"the process ended (rc {process.returncode}) before the kill: {process.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def logged_steps(output_dir: Path) -> list[int]:
    history = output_dir / "history.jsonl"
    if not history.is_file():
        return []
    return [json.loads(line)["step"] for line in history.read_text().splitlines() if line.endswith("}")]


def assert_same_weights(folder: Path, reference: Path) -> None:
    weights, expected = load_file(folder / "model.safetensors"), load_file(reference / "model.safetensors")
    assert weights.keys() == expected.keys()
    for name in expected:
        assert torch.equal(weights[name], expected[name]), name


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The reference: the same training run, never interrupted."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    run_to_completion(driver_command(folder, "finetune", finetune_arguments(folder / "run")), cwd=folder)
    return folder / "run"


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one_and_resume_is_exact(tmp_path, uninterrupted):
    output_dir, marker = tmp_path / "run", tmp_path / "hanging"
    command = driver_command(tmp_path, "finetune", finetune_arguments(output_dir))
    kill_when(command, tmp_path, marker.exists, PAUSE_IN=".tmp-checkpoint-4", PAUSE_MARKER=str(marker))

    checkpoints = output_dir / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == [".tmp-checkpoint-4", "checkpoint-2"]
    assert latest_checkpoint(output_dir) == checkpoints / "checkpoint-2"  # the half-written one is ignored
    for name in ("model.safetensors", "optimizer.bin", "trainer_state.json"):  # the previous one is intact
        expected = uninterrupted / "checkpoints" / "checkpoint-2" / name
        assert (checkpoints / "checkpoint-2" / name).read_bytes() == expected.read_bytes(), name

    run_to_completion(command + ["--resume_from", str(output_dir)], cwd=tmp_path)
    assert_same_weights(output_dir / "final", uninterrupted / "final")
    assert_same_weights(checkpoints / "checkpoint-4", uninterrupted / "checkpoints" / "checkpoint-4")
    assert not (checkpoints / ".tmp-checkpoint-4").exists()
    assert logged_steps(output_dir) == logged_steps(uninterrupted)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_between_checkpoints_then_resume_is_exact(tmp_path, uninterrupted):
    output_dir = tmp_path / "run"
    command = driver_command(tmp_path, "finetune", finetune_arguments(output_dir))
    delay_s = random.uniform(0.0, 1.5)  # lands in step 4 or 5: data, forward, backward, optimiser or a save
    moment = {}

    def step_3_logged_and_delay_passed() -> bool:
        if 3 not in logged_steps(output_dir):
            return False
        moment.setdefault("logged", time.monotonic())
        return time.monotonic() - moment["logged"] >= delay_s

    kill_when(command, tmp_path, step_3_logged_and_delay_passed)
    killed_at = max(logged_steps(output_dir))
    newest = latest_checkpoint(output_dir)
    assert json.loads((newest / "trainer_state.json").read_text())["step"] == int(newest.name.split("-")[1]) <= killed_at

    run_to_completion(command + ["--resume_from", str(output_dir)], cwd=tmp_path)
    assert_same_weights(output_dir / "final", uninterrupted / "final")
    assert logged_steps(output_dir) == logged_steps(uninterrupted), f"killed {delay_s:.2f} s after step 3"


def test_a_checkpoint_half_deleted_while_being_replaced_is_not_taken_for_a_complete_one(tmp_path, monkeypatch):
    """A job restarted from an older checkpoint saves the same step again: the old folder of that step is deleted
    first, and a kill during the deletion must not leave a folder that still looks complete."""
    output_dir = tmp_path / "run"
    finetune.main(finetune_arguments(output_dir, "--max_steps", "4"))
    delete = loop.shutil.rmtree

    class Killed(BaseException):
        pass

    def killed_half_way(path, *args, **kwargs):
        if Path(path).name == "checkpoint-4":
            (Path(path) / "model.safetensors").unlink()  # the deletion got this far
            raise Killed
        delete(path, *args, **kwargs)

    monkeypatch.setattr(loop.shutil, "rmtree", killed_half_way)
    with pytest.raises(Killed):
        finetune.main(finetune_arguments(
            output_dir, "--max_steps", "4", "--resume_from", str(output_dir / "checkpoints" / "checkpoint-2")
        ))
    monkeypatch.undo()

    newest = latest_checkpoint(output_dir)
    assert (newest / "model.safetensors").is_file() and (newest / "optimizer.bin").is_file(), newest
    finetune.main(finetune_arguments(output_dir, "--max_steps", "4", "--resume_from", str(output_dir)))
    assert (output_dir / "final" / "model.safetensors").is_file()


def stored_ids(cache_dir: Path) -> list[str]:
    """Every id of every rank index, duplicates kept."""
    ids = []
    for index in cache_dir.glob("index-rank*.json"):
        for shard_ids in json.loads(index.read_text())["shards"].values():
            ids += shard_ids
    return ids


def test_sigkill_while_writing_a_target_shard_then_rerun_has_no_duplicates_or_gaps(tmp_path, monkeypatch):
    teachers = save_tiny_teachers(tmp_path / "teachers", LABELS)
    cache_dir, marker = tmp_path / "cache", tmp_path / "hanging"
    arguments = extraction_arguments(teachers, cache_dir)
    kill_when(driver_command(tmp_path, "extract", arguments), tmp_path, marker.exists,
              PAUSE_IN="targets-rank00000-000002", PAUSE_MARKER=str(marker))

    # Two shards were written and indexed; the third was killed half-written under its temporary name.
    assert sorted(path.name for path in cache_dir.iterdir()) == [
        "index-rank00000.json", "targets-rank00000-000000.safetensors", "targets-rank00000-000001.safetensors",
        "targets-rank00000-000002.safetensors.tmp",
    ]
    assert len(TargetCache(cache_dir)) == 2 * SHARD_SIZE

    computed = []
    extract = target_cache_module.extract_targets

    def counting_extract(*args, **kwargs):
        computed.append(extract(*args, **kwargs))
        return computed[-1]

    monkeypatch.setattr(kd, "extract_targets", counting_extract)
    monkeypatch.setattr(kd, "TargetCacheWriter", functools.partial(TargetCacheWriter, shard_size=SHARD_SIZE))
    config = kd.load_run_config(kd.build_argument_parser("").parse_args(arguments))
    loaded = kd.load_teachers(config, LABELS, torch.device("cpu"))
    data = kd.build_training_data(config, LABELS)
    cache = kd.fill_target_cache(str(cache_dir), loaded, data, torch.device("cpu"))

    everything = [str(example_id) for example_id in data.mixture.datasets[0]["id"]]
    assert computed == [len(everything) - 2 * SHARD_SIZE]  # only what the killed run had not stored
    assert sorted(stored_ids(cache_dir)) == sorted(everything)  # each utterance exactly once
    assert not list(cache_dir.glob("*.tmp"))
    reference = kd.fill_target_cache(str(tmp_path / "reference"), loaded, data, torch.device("cpu"))
    for key, expected in reference.get(everything).items():
        torch.testing.assert_close(cache.get(everything)[key].values, expected.values, rtol=0, atol=2e-3)
