"""The `evaluate` modules this package ships (WER, tagging mAP, speaker EER/minDCF), loaded from the installed
package: no Hub access, so they work with HF_HUB_OFFLINE=1 / HF_EVALUATE_OFFLINE=1.

Each module is a folder `hf/<name>/<name>.py` next to this file (the layout `evaluate.load(<folder>)` reads); its
computation calls the functions of this package's metrics, so `load_metric("mt2kd_wer").compute(...)` equals
`word_error_rate(...)` and so on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import evaluate

MODULES_DIR = Path(__file__).resolve().parent / "hf"
METRIC_NAMES = ("mt2kd_wer", "mt2kd_map", "mt2kd_speaker_verification")


def metric_path(name: str) -> str:
    """The folder of the packaged module `name`, for `evaluate.load(metric_path(name))`."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown MT2KD metric {name!r}; the package ships {', '.join(METRIC_NAMES)}")
    folder = MODULES_DIR / name
    if not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(
            f"{folder / f'{name}.py'} is missing from the installed package; reinstall mt2kd "
            "(its setup.py ships training/evaluation/metrics/hf/*/*.py as package data)"
        )
    return str(folder)


def load_metric(name: str, keep_in_memory: bool = True, **load_kwargs: Any) -> evaluate.EvaluationModule:
    """`evaluate.load` of a packaged module by name ("mt2kd_wer", "mt2kd_map", "mt2kd_speaker_verification").

    `keep_in_memory` (default True) keeps the predictions and references in memory instead of `evaluate`'s cache
    files; other keyword arguments go to `evaluate.load`.
    """
    import evaluate  # imported here: it takes seconds, and only metric users need it

    return evaluate.load(metric_path(name), keep_in_memory=keep_in_memory, **load_kwargs)
