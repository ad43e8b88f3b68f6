"""The demo's training runs: complete run configurations for kd.py and finetune.py, each run as its
own process (`python -m training_mt2kd.recipe.finetune --config RUN_DIR/run_config.yaml`, exactly what a
user would type), several at a time when they do not depend on each other."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from training_mt2kd.recipe.loop import latest_checkpoint

SCRIPTS = {"kd": "training_mt2kd.recipe.kd", "finetune": "training_mt2kd.recipe.finetune"}
LOG_FILE = "log.txt"
POLL_S = 1.0


@dataclass(frozen=True)
class TrainingRun:
    """One call of a stage script.

    Attributes:
        name: the run's folder under `runs/` and its step in the ledger.
        title: what it trains, for progress lines and the report.
        script: "kd" (stage 1) or "finetune" (stage 2, baselines, teachers).
        config: the complete run configuration (training/recipe/config.py), `training.output_dir` included.
        needs: names of the runs whose final folders this one reads.
    """

    name: str
    title: str
    script: str
    config: dict[str, Any]
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.script not in SCRIPTS:
            raise ValueError(f"run {self.name!r}: script must be one of {sorted(SCRIPTS)}; got {self.script!r}")

    @property
    def output_dir(self) -> Path:
        return Path(self.config["training"]["output_dir"])

    @property
    def final(self) -> Path:
        """The model folder the run leaves (`OUTPUT_DIR/final`)."""
        return self.output_dir / "final"

    @property
    def max_steps(self) -> int:
        return int(self.config["training"]["max_steps"])

    def command(self) -> list[str]:
        """The command line that trains this run (its configuration file written by `start`)."""
        return [sys.executable, "-m", SCRIPTS[self.script], "--config", str(self.output_dir / "run_config.yaml")]


class TrainingProcess:
    """A run training in a child process with `threads` CPU threads; its output goes to `RUN_DIR/log.txt`.

    With `resume`, a run that left a checkpoint continues from it; otherwise its folder is cleared
    and it starts afresh (so a half-written history never mixes with a new one).
    """

    def __init__(self, run: TrainingRun, resume: bool, threads: int) -> None:
        self.run = run
        command = run.command()
        if resume and latest_checkpoint(run.output_dir) is not None:
            command += ["--resume_from", str(run.output_dir)]
        else:
            shutil.rmtree(run.output_dir, ignore_errors=True)
        run.output_dir.mkdir(parents=True, exist_ok=True)
        (run.output_dir / "run_config.yaml").write_text(yaml.safe_dump(run.config, sort_keys=False), encoding="utf-8")
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.log = open(run.output_dir / LOG_FILE, "w", encoding="utf-8")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=environment)

    def steps_done(self) -> int:
        """The last step the run logged to its history.jsonl (0 before the first)."""
        history = self.run.output_dir / "history.jsonl"
        if not history.is_file():
            return 0
        lines = history.read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1])["step"] if lines and lines[-1].strip() else 0

    def poll(self) -> bool:
        """Whether the process has ended."""
        return self.process.poll() is not None

    def wait(self) -> Path:
        """Wait for the run to end; returns its final folder, or raises with the end of its log."""
        while not self.poll():
            time.sleep(POLL_S)
        self.log.close()
        if self.process.returncode != 0:
            tail = (self.run.output_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(
                f"training run {self.run.name} failed (exit status {self.process.returncode}); "
                f"the end of {self.run.output_dir / LOG_FILE}:\n{tail}"
            )
        return self.run.final

    def stop(self) -> None:
        """End the child process (when the demo itself is interrupted or another run failed)."""
        if not self.poll():
            self.process.terminate()
            self.process.wait()
        self.log.close()


@contextlib.contextmanager
def terminate_raises_system_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit (status 143) instead of ending Python at once, so the
    caller's `finally` stops its child training processes rather than leaving them running orphaned.
    Outside the main thread, where Python cannot handle signals, the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_system_exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_system_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
