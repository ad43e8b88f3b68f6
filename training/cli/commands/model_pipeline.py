"""A transformers pipeline on an MT2KD model folder, for the CLI."""

from __future__ import annotations

from transformers import Pipeline
from transformers.utils import logging

from processing_mt2kd.pipelines.model_source import load_mt2kd_pipeline

__all__ = ["load_pipeline"]


def load_pipeline(task: str, model: str, device: str | None, **pipeline_options) -> Pipeline:
    """`pipeline(task, model=model, device=device, **pipeline_options)`, quiet about the heads a task does not use.

    One folder holds every head; loading it for one task would log each unused head's weights. The folder and device
    are checked first ([`load_mt2kd_pipeline`]): a broken folder raises `ModelLoadError` (a ValueError, exit 2) with
    one line naming the file and the fix.
    """
    logging.set_verbosity_error()
    return load_mt2kd_pipeline(task, model, device, **pipeline_options)
