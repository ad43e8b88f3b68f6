"""Named configurations: the paper's model and a tiny one for tests and demos."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PRESETS: dict[str, dict] = {
    # Zipformer2 "medium" encoder of the paper (63,994,103 encoder parameters) with its heads.
    "mt2kd-66m": {
        "num_encoder_layers": (2, 2, 3, 4, 3, 2),
        "downsampling_factor": (1, 2, 4, 8, 4, 2),
        "encoder_dim": (192, 256, 384, 512, 384, 256),
        "encoder_unmasked_dim": (192, 192, 256, 256, 256, 192),
        "num_attention_heads": (4, 4, 4, 8, 4, 4),
        "query_head_dim": 32,
        "value_head_dim": 12,
        "pos_head_dim": 4,
        "pos_dim": 48,
        "feedforward_dim": (512, 768, 1024, 1536, 1024, 768),
        "cnn_module_kernel": (31, 31, 15, 15, 15, 31),
        "vocab_size": 500,
        "decoder_dim": 512,
        "joiner_dim": 512,
        "context_size": 2,
        "speaker_embedding_dim": 192,
        "whisper_dim": 1280,
    },
    # Four small stacks (the authors'-code parity fixture's sizes); seconds to build and run on CPU.
    "mt2kd-tiny": {
        "num_encoder_layers": (1, 2, 2, 1),
        "downsampling_factor": (1, 2, 4, 2),
        "encoder_dim": (32, 48, 64, 48),
        "encoder_unmasked_dim": (32, 32, 48, 32),
        "num_attention_heads": (2, 2, 4, 2),
        "query_head_dim": 8,
        "value_head_dim": 4,
        "pos_head_dim": 4,
        "pos_dim": 16,
        "feedforward_dim": (64, 96, 128, 96),
        "cnn_module_kernel": (7, 7, 5, 7),
        "vocab_size": 50,
        "decoder_dim": 32,
        "joiner_dim": 32,
        "context_size": 2,
        "speaker_embedding_dim": 192,
        "num_speakers": 11,
        "whisper_dim": 64,
    },
}


def resolve_preset(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The config values of a named preset or of an MT2KD config.json file: the one resolver of a
    `preset` option (run configurations, converters)."""
    if str(name_or_path) in PRESETS:
        return dict(PRESETS[str(name_or_path)])
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"{str(name_or_path)!r} is neither an MT2KD preset ({', '.join(sorted(PRESETS))}) nor a config.json file; "
            "pass a preset name or the path of a saved config.json"
        )
    from .configuration_mt2kd import MT2KDConfig  # noqa: PLC0415 - configuration_mt2kd imports this module lazily

    values = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(values, dict) or values.get("model_type") != MT2KDConfig.model_type:
        raise ValueError(f"{path} is not an MT2KD config.json (its model_type must be {MT2KDConfig.model_type!r})")
    return MT2KDConfig.from_dict(values).to_dict()
