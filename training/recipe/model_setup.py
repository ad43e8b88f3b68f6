"""Model configuration from the run configuration's `model` section."""

from __future__ import annotations

from configuration_mt2kd import MT2KDConfig
from configuration_mt2kd.presets import resolve_preset

from training_mt2kd.recipe.config import ModelOptions


def build_model_config(options: ModelOptions, **facts) -> MT2KDConfig:
    """The preset (or config.json) with the YAML overrides, then `facts` the data or teachers
    dictate (e.g. the number of training speakers, the teachers' widths)."""
    values = resolve_preset(options.preset)
    return MT2KDConfig(**{**values, **options.overrides, **facts})
