"""The speaker-verification decision threshold a model folder carries, calibrated on trials at evaluation time.

A cosine score means "same speaker" only relative to a threshold measured on labelled trials of the model's own
embeddings: a fixed number borrowed from another model (SpeechBrain ECAPA's 0.25) accepted 110 of 180 impostor
pairs on the demo's trials. `training_mt2kd.evaluation.threshold` measures it on a dev trial list and stores it
in the folder's config.json under `CALIBRATED_THRESHOLD_KEY`; the verification pipeline and `mt2kd verify`
decide with it by default. A folder without one gets scores and no decision.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CALIBRATED_THRESHOLD_KEY",
    "NO_THRESHOLD_MESSAGE",
    "CalibratedThreshold",
    "read_calibrated_threshold",
    "store_calibrated_threshold",
]

# The config.json entry (config attribute) that holds the calibration, a `CalibratedThreshold` as a dict.
CALIBRATED_THRESHOLD_KEY = "speaker_verification_threshold"
NO_THRESHOLD_MESSAGE = (
    "this model folder has no calibrated speaker-verification threshold, so no same/different decision is made "
    "(scores only); pass threshold=... (mt2kd verify --threshold), or calibrate one on labelled dev trials with "
    "training_mt2kd.evaluation.threshold.calibrate_folder_threshold"
)


@dataclass(frozen=True)
class CalibratedThreshold:
    """A cosine threshold and where it came from.

    Args:
        threshold: cosine score at and above which two recordings are the same speaker.
        method: `"equal_error_rate"` (misses = false accepts on the dev trials) or `"false_accept_rate"` (the
            lowest threshold whose false-accept rate on the dev trials is at most `target_false_accept_rate`).
        trials: name of the dev trial list it was measured on.
        num_target_trials, num_nontarget_trials: trials of each kind in it.
        false_accept_rate, miss_rate: the rates at `threshold` on those trials (fractions).
        target_false_accept_rate: the target of method `"false_accept_rate"`, else None.
    """

    threshold: float
    method: str
    trials: str
    num_target_trials: int
    num_nontarget_trials: int
    false_accept_rate: float
    miss_rate: float
    target_false_accept_rate: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CalibratedThreshold:
        """Inverse of `as_dict`; raises ValueError naming the bad entry."""
        try:
            calibrated = cls(**values)
        except TypeError as error:
            raise ValueError(f"config.json entry {CALIBRATED_THRESHOLD_KEY!r} is malformed ({error}); re-run the "
                             "threshold calibration") from None
        if not isinstance(calibrated.threshold, (int, float)) or not math.isfinite(calibrated.threshold):
            raise ValueError(f"config.json entry {CALIBRATED_THRESHOLD_KEY!r} has threshold "
                             f"{calibrated.threshold!r}; expected a finite cosine score")
        return calibrated


def read_calibrated_threshold(config: Any) -> CalibratedThreshold | None:
    """The calibration stored in a model config (an `MT2KDConfig` or a config.json dict), or None."""
    values = config.get(CALIBRATED_THRESHOLD_KEY) if isinstance(config, dict) else getattr(
        config, CALIBRATED_THRESHOLD_KEY, None
    )
    return None if values is None else CalibratedThreshold.from_dict(dict(values))


def store_calibrated_threshold(folder: str | os.PathLike, calibrated: CalibratedThreshold) -> None:
    """Write `calibrated` into `folder/config.json` (the other entries are kept)."""
    config_path = Path(folder) / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist; pass a model folder written by save_pretrained")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config[CALIBRATED_THRESHOLD_KEY] = calibrated.as_dict()
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
