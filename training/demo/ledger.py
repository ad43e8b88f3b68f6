"""What a demo folder already holds: for each step, the key of the inputs it was built from and when
it was built, in one JSON file (`demo_state.json`).

A step is reused when its recorded key equals the key of its current inputs (the plan values it
reads and the keys of the steps it builds on) and its outputs exist; anything else rebuilds it.
Keys are computed with the demo folder's own path replaced by a placeholder, so a moved folder is
still reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT_PLACEHOLDER = "$DEMO_DIR"


class StepLedger:
    """The `demo_state.json` of one demo folder `root`: step name → {key, finished, started_at, ended_at}."""

    def __init__(self, root: Path, file_name: str = "demo_state.json") -> None:
        self.root = Path(root).resolve()
        self.path = self.root / file_name
        self.entries: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        )

    def key(self, inputs: Any) -> str:
        """SHA-256 of `inputs` (JSON-serialisable; paths as absolute strings) with this folder's path replaced."""
        text = json.dumps(inputs, sort_keys=True, default=str).replace(str(self.root), ROOT_PLACEHOLDER)
        return hashlib.sha256(text.encode()).hexdigest()

    def is_finished(self, step: str, key: str, outputs: Sequence[Path] = ()) -> bool:
        """Whether `step` was finished from inputs with this `key` and its `outputs` still exist."""
        entry = self.entries.get(step, {})
        return entry.get("key") == key and entry.get("finished", False) and all(Path(p).exists() for p in outputs)

    def was_started(self, step: str, key: str) -> bool:
        """Whether `step` was started from inputs with this `key` (and may be resumed)."""
        return self.entries.get(step, {}).get("key") == key

    def seconds(self, step: str) -> float | None:
        """Wall-clock seconds the finished `step` took to build (None if not finished)."""
        entry = self.entries.get(step, {})
        return entry["ended_at"] - entry["started_at"] if entry.get("finished") else None

    def busy_seconds(self, steps: Sequence[str]) -> float:
        """Wall-clock seconds during which at least one of the finished `steps` was being built: the
        demo's build time, counting steps that ran side by side once and time between runs not at all."""
        intervals = sorted(
            (entry["started_at"], entry["ended_at"])
            for entry in (self.entries.get(step, {}) for step in steps)
            if entry.get("finished")
        )
        total, covered_until = 0.0, float("-inf")
        for start, end in intervals:
            total += max(0.0, end - max(start, covered_until))
            covered_until = max(covered_until, end)
        return total

    def start(self, step: str, key: str) -> None:
        self._write(step, {"key": key, "finished": False})

    def finish(self, step: str, key: str, started_at: float, ended_at: float) -> None:
        """Record `step` as built from inputs `key` between two `time.time()` readings."""
        self._write(step, {"key": key, "finished": True, "started_at": started_at, "ended_at": ended_at})

    def _write(self, step: str, entry: dict[str, Any]) -> None:
        self.entries[step] = entry
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)  # never a half-written ledger
