"""Model configuration from the run configuration's `model` section."""

from __future__ import annotations

from pathlib import Path

from configuration_mt2kd import PRESETS, MT2KDConfig

from training_mt2kd.recipe.config import ModelOptions


def build_model_config(options: ModelOptions, **facts) -> MT2KDConfig:
    """The preset (or config.json) with the YAML overrides, then `facts` the data or teachers
    dictate (e.g. the number of training speakers, the teachers' widths)."""
    if options.preset in PRESETS:
        values = dict(PRESETS[options.preset])
    elif Path(options.preset).is_file():
        values = MT2KDConfig.from_json_file(options.preset).to_dict()
    else:
        raise ValueError(f"model.preset must be one of {sorted(PRESETS)} or a config.json path; got {options.preset!r}")
    return MT2KDConfig(**{**values, **options.overrides, **facts})
