"""The demo corpus split by kind of clip, as the training scripts and evaluate.py read it.

Speech clips carry a transcript, a speaker and tags; event-only clips carry tags alone, so a
speech-recognition or speaker corpus must not see them. `write_task_manifests` writes one CSV per
(kind, split) next to the corpus (audio paths stay relative to the corpus root), and
`TaskManifests.corpus_entry` gives the run-configuration corpus entry that trains given tasks on one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training_mt2kd.tasks import get_task, parse_task_list, task_names
from training_mt2kd.demo.synthesis import DemoCorpus

KINDS = ("speech", "events")
COLUMNS = {
    "audio": "path",
    "id": "path",
    "duration": "duration_s",
    "text": "transcript",
    "labels": "labels",
    "speaker": "speaker",
}


@dataclass(frozen=True)
class TaskManifests:
    """Where the per-kind manifests of one demo corpus are.

    Attributes:
        corpus: the demo corpus (its root is the audio root of every manifest).
        manifests: (kind, split) → CSV with the corpus' manifest columns, kind "speech" or "events".
        durations_s: (kind, split) → total seconds of audio.
    """

    corpus: DemoCorpus
    manifests: dict[tuple[str, str], Path]
    durations_s: dict[tuple[str, str], float]

    def corpus_entry(self, kind: str, split: str, tasks: str, weight: float = 1.0) -> dict[str, Any]:
        """A `data.train` entry (a `CorpusSpec` entry, see training_mt2kd.data.corpus_spec_from_dict) for `tasks` ("asr+speaker", "distill", ...)."""
        return {
            "name": f"{kind}_{split}",
            "source": str(self.manifests[kind, split]),
            "root": str(self.corpus.root),
            "columns": _columns(tasks),
            "task": tasks,
            "weight": weight,
        }

    def evaluation_source(self, kind: str | None, split: str, task: str) -> dict[str, Any]:
        """`source`, `root` and `columns` of an evaluate.py entry for `task` over one kind of clip (None: all)."""
        source = self.corpus.manifests[split] if kind is None else self.manifests[kind, split]
        return {"source": str(source), "root": str(self.corpus.root), "columns": _columns(task)}


def _columns(tasks: str) -> dict[str, str]:
    """Role → manifest column for the roles `tasks` read (audio, id and duration always)."""
    roles = {"audio", "id", "duration"} | {get_task(task).label_role for task in parse_task_list(tasks) if task in task_names()}
    return {role: column for role, column in COLUMNS.items() if role in roles}


def write_task_manifests(corpus: DemoCorpus, folder: str | Path) -> TaskManifests:
    """Write `speech_<split>.csv` and `events_<split>.csv` of every split into `folder` (rewritten each time:
    they are derived from the corpus in milliseconds)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifests, durations = {}, {}
    for split, source in corpus.manifests.items():
        with open(source, newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            fieldnames, rows = reader.fieldnames, list(reader)
        for kind in KINDS:
            kept = [row for row in rows if bool(row["speaker"]) == (kind == "speech")]
            path = folder / f"{kind}_{split}.csv"
            with open(path, "w", newline="", encoding="utf-8") as file:
                writer = csv.DictWriter(file, fieldnames=fieldnames, lineterminator="\n")
                writer.writeheader()
                writer.writerows(kept)
            manifests[kind, split] = path
            durations[kind, split] = sum(float(row["duration_s"]) for row in kept)
    return TaskManifests(corpus, manifests, durations)
