"""Targets from manifest values: multi-hot tag vectors by label name, speaker names to classes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np


class LabelSet:
    """Maps label names to positions of a multi-hot vector (e.g. a config's `id2label`).

    A manifest's label value may be a list of names, one name, or several names in one string
    joined by `separator` (";" by default: AudioSet display names contain commas). Integers are
    looked up by their decimal string, so a digit label `3` matches the name "3".
    """

    def __init__(self, names: Sequence[str] | Mapping[int, str], separator: str = ";") -> None:
        if isinstance(names, Mapping):
            expected = set(range(len(names)))
            if set(int(key) for key in names) != expected:
                raise ValueError(f"id2label must have the keys 0..{len(names) - 1}; got {sorted(names)[:10]}...")
            names = [names[key] if key in names else names[str(key)] for key in range(len(names))]
        names = [str(name) for name in names]
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"label names must be unique; {duplicates} appear more than once")
        if not names:
            raise ValueError("a LabelSet needs at least one label name; got none")
        self.names = names
        self.separator = separator
        self._index = {name: position for position, name in enumerate(names)}

    def __len__(self) -> int:
        return len(self.names)

    def split(self, value: str | int | Sequence[str | int] | None) -> list[str]:
        """The label names in one manifest value (empty for None or an empty string)."""
        if value is None:
            return []
        if isinstance(value, (str, int, np.integer)):
            value = str(value).split(self.separator) if self.separator else [str(value)]
        return [str(name).strip() for name in value if str(name).strip()]

    def encode(self, value: str | int | Sequence[str | int] | None) -> tuple[np.ndarray, list[str]]:
        """`(multi_hot (num_labels,) float32, unknown names)`; unknown names are left out."""
        multi_hot = np.zeros(len(self.names), dtype=np.float32)
        unknown = []
        for name in self.split(value):
            position = self._index.get(name)
            if position is None:
                unknown.append(name)
            else:
                multi_hot[position] = 1.0
        return multi_hot, unknown


class SpeakerIndex:
    """A fixed speaker-name → class mapping (sorted names → 0..N-1), saved with the model.

    Build it once from the training corpora with `from_names`, save it next to the checkpoint,
    and load it when resuming, so class ids never depend on corpus order or on which rank ran.
    """

    def __init__(self, speakers: Sequence[str]) -> None:
        speakers = [str(speaker) for speaker in speakers]
        if len(set(speakers)) != len(speakers):
            raise ValueError("speaker names must be unique; build the index with SpeakerIndex.from_names")
        self.speakers = speakers
        self._index = {speaker: position for position, speaker in enumerate(speakers)}

    @classmethod
    def from_names(cls, names: Iterable[str | int | None]) -> SpeakerIndex:
        """Index every distinct non-empty speaker name, in sorted order."""
        return cls(sorted({str(name) for name in names if name is not None and str(name) != ""}))

    def __len__(self) -> int:
        return len(self.speakers)

    def get(self, speaker: str | int | None) -> int | None:
        """The class of `speaker`, or None when it is not in the index."""
        if speaker is None:
            return None
        return self._index.get(str(speaker))

    def save(self, path: str | Path) -> None:
        """Write `{"speakers": [name, ...]}` (class id = position) as JSON."""
        Path(path).write_text(json.dumps({"speakers": self.speakers}, indent=1, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> SpeakerIndex:
        """Read an index written by `save`."""
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or "speakers" not in state:
            raise ValueError(f"{path} is not a speaker index: expected a JSON object with a 'speakers' list")
        return cls(state["speakers"])
