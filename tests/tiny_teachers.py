"""Tiny random-initialised teachers of the real classes (Whisper, AST, WavLM x-vector), saved to
folders the stage-1 script loads like Hub checkpoints."""

from pathlib import Path

import torch
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WavLMForXVector,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)


def save_tiny_teachers(folder: Path, label_names: list[str]) -> dict[str, Path]:
    """Write `whisper/`, `tagger/` and `speaker/` under `folder`; returns their paths."""
    torch.manual_seed(0)
    paths = {name: folder / name for name in ("whisper", "tagger", "speaker")}
    whisper = WhisperModel(
        WhisperConfig(
            d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=64, max_target_positions=16, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
        )
    )
    whisper.save_pretrained(paths["whisper"])
    WhisperFeatureExtractor(feature_size=80).save_pretrained(paths["whisper"])
    tagger = ASTForAudioClassification(
        ASTConfig(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_length=128,
            num_mel_bins=32, id2label=dict(enumerate(label_names)),
            label2id={name: index for index, name in enumerate(label_names)},
        )
    )
    tagger.save_pretrained(paths["tagger"])
    ASTFeatureExtractor(num_mel_bins=32, max_length=128).save_pretrained(paths["tagger"])
    speaker = WavLMForXVector(
        WavLMConfig(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
            conv_kernel=(40, 4), conv_stride=(20, 4), feat_extract_norm="layer", do_stable_layer_norm=True,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=16, max_bucket_distance=32,
            tdnn_dim=(8, 8), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=8,
        )
    )
    speaker.save_pretrained(paths["speaker"])
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True).save_pretrained(paths["speaker"])
    return paths
