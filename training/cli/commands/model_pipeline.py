"""A transformers pipeline on an MT2KD model folder, for the CLI."""

from __future__ import annotations

from transformers import Pipeline, pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging

import processing_mt2kd  # noqa: F401 - registers the MT2KD model, front end and pipeline tasks with transformers

__all__ = ["load_pipeline"]


def load_pipeline(task: str, model: str, device: str | None) -> Pipeline:
    """`pipeline(task, model=model, device=device)`, quiet about the heads a task does not use.

    One folder holds every head; loading it for one task would log each unused head's weights.
    """
    logging.set_verbosity_error()
    registered = PIPELINE_REGISTRY.supported_tasks.get(task)
    # A released folder names its pipelines as remote code (`custom_pipelines`); with the package
    # installed, use the registered class rather than asking for trust_remote_code.
    pipeline_class = registered["impl"] if registered is not None and task.startswith("mt2kd-") else None
    return pipeline(task, model=model, device=device, pipeline_class=pipeline_class)
