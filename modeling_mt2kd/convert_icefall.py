"""Convert the authors' icefall checkpoints (stage-1 `MultiKDModel`, stage-2 `AsrModel`) to MT2KD
Hugging Face folders.

    python -m modeling_mt2kd.convert_icefall --checkpoint epoch-30.pt --config mt2kd-66m --output mt2kd-66m
    python -m modeling_mt2kd.convert_icefall --checkpoint stage2.pt --stage1-checkpoint stage1.pt \
        --config params.json --output converted

A stage-2 checkpoint (it has `decoder.*`/`joiner.*`) becomes `MT2KDForMultiTask`; a stage-1 one
(it has `whisper_projection.*` and no transducer) becomes `MT2KDForDistillation`. With
`--stage1-checkpoint`, the stage-1 model is also written to `OUTPUT/stage1`; keys it lacks are taken
from `--checkpoint` (the fixtures store the shared stage-1 keys only once). Checkpoints are read
with safetensors or `torch.load(weights_only=True)` only. Every key is either loaded or reported
as dropped, with the reason.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from configuration_mt2kd import MT2KDConfig
from configuration_mt2kd.presets import resolve_preset

from .modeling_mt2kd import MT2KDForDistillation, MT2KDForMultiTask, MT2KDPreTrainedModel

# (icefall key pattern, our key template), tried in order; the first match wins.
RENAME_RULES: tuple[tuple[str, str], ...] = (
    (r"encoder_embed\.conv\.0\.(.*)", r"mt2kd.encoder.embed.conv1.\1"),
    (r"encoder_embed\.conv\.4\.(.*)", r"mt2kd.encoder.embed.conv2.\1"),
    (r"encoder_embed\.conv\.7\.(.*)", r"mt2kd.encoder.embed.conv3.\1"),
    (r"encoder_embed\.out\.(.*)", r"mt2kd.encoder.embed.out_proj.\1"),
    (r"encoder_embed\.(convnext|out_norm)\.(.*)", r"mt2kd.encoder.embed.\1.\2"),
    (r"encoder\.encoders\.(\d+)\.encoder\.layers\.(.*)", r"mt2kd.encoder.stacks.\1.layers.\2"),
    (r"encoder\.encoders\.(\d+)\.layers\.(.*)", r"mt2kd.encoder.stacks.\1.layers.\2"),
    (r"encoder\.encoders\.(\d+)\.(downsample|out_combiner)\.(.*)", r"mt2kd.encoder.stacks.\1.\2.\3"),
    (r"encoder\.downsample_output\.(.*)", r"mt2kd.encoder.output_downsample.\1"),
    (r"decoder\.embedding\.(.*)", r"transducer.predictor.embedding.\1"),
    (r"decoder\.conv\.(.*)", r"transducer.predictor.context_conv.\1"),
    (r"(joiner|simple_am_proj|simple_lm_proj)\.(.*)", r"transducer.\1.\2"),
    (r"ctc_output\.1\.(.*)", r"ctc_head.proj.\1"),
    (r"(?:audio_tagging_decoder|beats_decoder)\.1\.(.*)", r"tagging_head.proj.\1"),
    (r"ecapa_asp\.tdnn\.conv\.conv\.(.*)", r"speaker_head.pooling.attention_in.\1"),
    (r"ecapa_asp\.tdnn\.norm\.norm\.(.*)", r"speaker_head.pooling.attention_norm.\1"),
    (r"ecapa_asp\.conv\.conv\.(.*)", r"speaker_head.pooling.attention_out.\1"),
    (r"ecapa_linear\.(.*)", r"speaker_head.embedding.\1"),
    (r"speaker_classifier\.(.*)", r"speaker_classifier.\1"),
    (r"whisper_projection\.(.*)", r"whisper_projection.proj.\1"),
)

# icefall argument names (train_multi_task.py / train_multi_KD3.py) → MT2KDConfig names.
ICEFALL_ARGUMENTS = {
    "num_encoder_layers": "num_encoder_layers",
    "downsampling_factor": "downsampling_factor",
    "encoder_dim": "encoder_dim",
    "encoder_unmasked_dim": "encoder_unmasked_dim",
    "num_heads": "num_attention_heads",
    "query_head_dim": "query_head_dim",
    "value_head_dim": "value_head_dim",
    "pos_head_dim": "pos_head_dim",
    "pos_dim": "pos_dim",
    "feedforward_dim": "feedforward_dim",
    "cnn_module_kernel": "cnn_module_kernel",
    "feature_dim": "num_mel_bins",
    "vocab_size": "vocab_size",
    "blank_id": "blank_id",
    "decoder_dim": "decoder_dim",
    "joiner_dim": "joiner_dim",
    "context_size": "context_size",
    "whisper_dim": "whisper_dim",
    "num_spkrs": "num_speakers",
}


@dataclass
class ConversionReport:
    """What happened to every checkpoint key."""

    loaded: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # icefall key → reason
    borrowed: list[str] = field(default_factory=list)  # stage-1 keys taken from the main checkpoint

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        lines += [f"dropped {key}: {reason}" for key, reason in sorted(self.dropped.items())]
        if self.borrowed:
            lines.append(f"took {len(self.borrowed)} stage-1 keys from the main checkpoint")
        return "\n".join(lines)


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an icefall checkpoint safely: `.safetensors`, or a `.pt` read with weights_only=True,
    with or without the `model` key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, SafetensorError) as error:
        raise ValueError(
            f"{path} is not a readable checkpoint ({_load_failure_reason(error)}); pass an icefall .pt (e.g. "
            "exp/pretrained.pt) or .safetensors file, downloaded again if it may be truncated. Only tensors are "
            "read: a file that needs code to unpickle is refused"
        ) from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path} is not a state dict (nor a dict with a 'model' state dict)")
    return checkpoint


def _load_failure_reason(error: Exception) -> str:
    """The informative line of a loading error. torch's weights-only message advises retrying with
    weights_only=False, i.e. running the file's code: that advice is dropped, never passed on."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    noise = ("weights_only", "Weights only", "torch.load", "Please file an issue")
    useful = [line for line in lines if not any(word in line for word in noise)]
    return useful[0] if useful else type(error).__name__


def rename_key(icefall_key: str) -> str | None:
    """Our parameter name for an icefall key, or None when no rule maps it."""
    for pattern, template in RENAME_RULES:
        if re.fullmatch(pattern, icefall_key):
            return re.sub(pattern, template, icefall_key)
    return None


def config_from_icefall_arguments(arguments: dict, **overrides) -> MT2KDConfig:
    """Build a config from icefall's argument names (comma-separated per-stack strings allowed)."""
    values = {}
    for icefall_name, our_name in ICEFALL_ARGUMENTS.items():
        if icefall_name in arguments:
            value = arguments[icefall_name]
            if isinstance(value, str):
                value = tuple(int(v) for v in value.split(","))
                value = value[0] if len(value) == 1 and our_name not in ("num_encoder_layers",) else value
            values[our_name] = value
    for flag, our_name in (("use_ctc", "use_ctc"), ("use_transducer", "use_transducer"),
                           ("do_audio_tagging", "use_audio_tagging"), ("do_sv", "use_speaker"),
                           ("causal", "causal")):
        if flag in arguments:
            values[our_name] = bool(arguments[flag])
    values.update(_chunk_arguments(arguments))
    return MT2KDConfig(**{**values, **overrides})


def _chunk_arguments(arguments: dict) -> dict:
    """The authors' `--chunk-size` / `--left-context-frames` lists (e.g. "16,32,64,-1"): the lists a
    causal model samples from in training; a single value is also the inference setting."""
    values = {}
    for icefall_name, training_name, inference_name in (
        ("chunk_size", "training_chunk_sizes", "chunk_size"),
        ("left_context_frames", "training_left_context_frames", "left_context_frames"),
    ):
        if icefall_name not in arguments:
            continue
        value = arguments[icefall_name]
        choices = tuple(int(v) for v in value.split(",")) if isinstance(value, str) else tuple(
            int(v) for v in (value if isinstance(value, (list, tuple)) else [value])
        )
        values[training_name] = choices
        if len(choices) == 1:
            values[inference_name] = choices[0]
    return values


def load_config(preset_or_json: str | Path | MT2KDConfig) -> MT2KDConfig:
    """A preset name or an MT2KD config.json (both through `resolve_preset`, the one preset resolver), or a JSON of
    icefall arguments (or a fixture README.json holding them)."""
    if isinstance(preset_or_json, MT2KDConfig):
        return preset_or_json
    arguments = _icefall_arguments(preset_or_json)
    if arguments is not None:
        return config_from_icefall_arguments(arguments)
    return MT2KDConfig(**resolve_preset(preset_or_json))


def _icefall_arguments(path: str | Path) -> dict | None:
    """The icefall arguments of a JSON file that is not an MT2KD config.json; None for anything else (a preset name,
    an MT2KD config.json), which `resolve_preset` then reads or refuses."""
    path = Path(path)
    if not path.is_file():
        return None
    arguments = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(arguments, dict) or arguments.get("model_type") == MT2KDConfig.model_type:
        return None
    fixture_config = arguments.get("config", {})  # a fixture README.json
    return fixture_config.get("params_stage2", fixture_config.get("params_training_construction", arguments))


def _is_stage2(state_dict: dict[str, torch.Tensor]) -> bool:
    return any(key.startswith(("decoder.", "joiner.")) for key in state_dict)


def _config_for_checkpoint(config: MT2KDConfig, state_dict: dict[str, torch.Tensor]) -> MT2KDConfig:
    """Set the head switches and the speaker count from what the checkpoint contains."""
    has = lambda prefix: any(key.startswith(prefix) for key in state_dict)  # noqa: E731
    updates = {
        "use_ctc": has("ctc_output."),
        "use_transducer": has("decoder."),
        "use_audio_tagging": has("audio_tagging_decoder.") or has("beats_decoder."),
        "use_speaker": has("ecapa_asp."),
    }
    if "speaker_classifier.weight" in state_dict:
        updates["num_speakers"] = state_dict["speaker_classifier.weight"].shape[0]
    if "whisper_projection.weight" in state_dict:
        updates["whisper_dim"] = state_dict["whisper_projection.weight"].shape[0] // config.teacher_frames_per_frame
    return MT2KDConfig.from_dict({**config.to_dict(), **updates})


def convert_state_dict(
    state_dict: dict[str, torch.Tensor], model: MT2KDPreTrainedModel, report: ConversionReport
) -> None:
    """Load an icefall state dict into `model`; every model tensor must be filled, every checkpoint
    key loaded or reported as dropped; shapes must match."""
    ours = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        target = rename_key(key)
        if target is None:
            report.dropped[key] = "no MT2KD counterpart"
            continue
        if target not in ours:
            report.dropped[key] = f"{type(model).__name__} has no {target}"
            continue
        if target in converted:
            if not torch.equal(converted[target], tensor):
                raise ValueError(f"{key} and another alias of {target} hold different values")
            report.dropped[key] = f"alias of a key already loaded into {target}"
            continue
        if ours[target].shape != tensor.shape:
            raise ValueError(
                f"shape mismatch for {key} → {target}: checkpoint {tuple(tensor.shape)}, model "
                f"{tuple(ours[target].shape)}; does --config describe this checkpoint?"
            )
        converted[target] = tensor
        report.loaded.append(key)
    missing = sorted(set(ours) - set(converted))
    if missing:
        raise ValueError(f"the checkpoint lacks {len(missing)} tensors of {type(model).__name__}, e.g. {missing[:5]}")
    model.load_state_dict(converted, strict=True)


def convert_icefall_checkpoint(
    checkpoint: str | Path | dict[str, torch.Tensor],
    config: str | Path | MT2KDConfig = "mt2kd-66m",
    output_dir: str | Path | None = None,
    stage1_checkpoint: str | Path | dict[str, torch.Tensor] | None = None,
) -> tuple[MT2KDPreTrainedModel, MT2KDForDistillation | None, ConversionReport]:
    """Convert a checkpoint (and optionally a stage-1 one); save to `output_dir` when given.

    Returns (main model, stage-1 model or None, report).
    """
    state_dict = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    base_config = load_config(config)
    report = ConversionReport()
    model_class = MT2KDForMultiTask if _is_stage2(state_dict) else MT2KDForDistillation
    model = model_class(_config_for_checkpoint(base_config, state_dict))
    convert_state_dict(state_dict, model, report)
    model.eval()

    stage1_model = None
    if stage1_checkpoint is not None:
        stage1_state = dict(stage1_checkpoint if isinstance(stage1_checkpoint, dict) else load_checkpoint(stage1_checkpoint))
        stage1_model = MT2KDForDistillation(_config_for_checkpoint(base_config, {**state_dict, **stage1_state}))
        needed = {rename_key(key) for key in state_dict} & set(stage1_model.state_dict())
        for key, tensor in state_dict.items():
            if key not in stage1_state and rename_key(key) in needed and not key.startswith("audio_tagging_decoder."):
                stage1_state[key] = tensor
                report.borrowed.append(key)
        stage1_report = ConversionReport()
        convert_state_dict(stage1_state, stage1_model, stage1_report)
        stage1_model.eval()

    if output_dir is not None:
        output_dir = Path(output_dir)
        model.save_pretrained(output_dir)
        if stage1_model is not None:
            stage1_model.save_pretrained(output_dir / "stage1")
        (output_dir / "conversion_report.json").write_text(
            json.dumps({"loaded": report.loaded, "dropped": report.dropped, "borrowed": report.borrowed}, indent=1)
        )
    return model, stage1_model, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="icefall checkpoint (.pt or .safetensors)")
    parser.add_argument("--stage1-checkpoint", help="stage-1 (MultiKDModel) checkpoint, also converted")
    parser.add_argument("--config", default="mt2kd-66m", help="preset name, MT2KD config.json or icefall-argument JSON")
    parser.add_argument("--output", required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        _, _, report = convert_icefall_checkpoint(args.checkpoint, args.config, args.output, args.stage1_checkpoint)
    except (OSError, ValueError) as error:
        parser.exit(2, f"convert_icefall: error: {error}\n")
    print(report.summary())


if __name__ == "__main__":
    main()
