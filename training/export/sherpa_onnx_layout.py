"""What sherpa-onnx reads besides the graphs: file names, tokens.txt, the tagging label file, and per-file metadata.

sherpa-onnx (k2-fsa) picks its model class from the encoder's `model_type` metadata and reads inputs and outputs by
position. What each loader expects (sherpa-onnx 2.0.1, `sherpa-onnx/csrc/`):

- offline transducer (`OfflineRecognizer.from_transducer`): encoder `(x (N, T, 80) float, x_lens (N,) int64) →
  (encoder_out (N, T', joiner_dim), encoder_out_lens (N,) int64)` with `model_type` zipformer2; decoder
  `y (N, context_size) int64 → (N, joiner_dim)` with `vocab_size` and `context_size`; joiner `(encoder_out,
  decoder_out) → logit (N, vocab)`. Greedy search starts from the context `[-1, ..., -1, 0]`: the blank must be 0.
- zipformer CTC (`from_zipformer_ctc`): `(x, x_lens) → (log_probs (N, T', vocab), log_probs_len (N,) int64)`; the
  blank is the `<blk>` of tokens.txt.
- zipformer audio tagging (`AudioTagging`): `(x, x_lens) → probs (N, num_classes)`; labels from a CSV
  `index,mid,display_name` with the display name in double quotes.
- speaker embedding (`SpeakerEmbeddingExtractor`): `x (1, T, 80) → embedding (1, dim)` and `framework` one of
  wespeaker / 3d-speaker / nemo. "wespeaker" is the loader that feeds plain fbank without normalisation; with
  `normalize_samples=1` the samples stay in [-1, 1] as our feature extractor has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CTC_FILE",
    "DECODER_FILE",
    "ENCODER_FILE",
    "JOINER_FILE",
    "SPEAKER_FILE",
    "TAGGING_FILE",
    "TAGGING_LABELS_FILE",
    "TOKENS_FILE",
    "ctc_metadata",
    "decoder_metadata",
    "encoder_metadata",
    "joiner_metadata",
    "speaker_metadata",
    "write_tagging_labels",
    "write_tokens",
]

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
JOINER_FILE = "joiner.onnx"
TOKENS_FILE = "tokens.txt"
CTC_FILE = "ctc.onnx"
TAGGING_FILE = "tagging.onnx"
TAGGING_LABELS_FILE = "tagging_labels.csv"
SPEAKER_FILE = "speaker.onnx"

SHERPA_BLANK_ID = 0  # hard-coded in sherpa-onnx's transducer searches


def write_tokens(pieces: list[str], path: Path) -> None:
    """tokens.txt: one `piece id` line per token id, as sherpa-onnx's SymbolTable reads it."""
    bad = [(index, piece) for index, piece in enumerate(pieces) if not piece or any(c.isspace() for c in piece)]
    if bad:
        raise ValueError(
            f"tokens.txt cannot hold pieces that are empty or contain white space; got {bad[:5]}. "
            "SentencePiece models write spaces as '▁'; check the tokenizer of the model folder"
        )
    path.write_text("".join(f"{piece} {index}\n" for index, piece in enumerate(pieces)), encoding="utf-8")


def write_tagging_labels(id2label: Mapping[int, str], path: Path) -> None:
    """The AudioSet-style label CSV sherpa-onnx's AudioTagging reads: `index,mid,display_name`, names in quotes.

    The model has no AudioSet machine ids, so `mid` is left empty (sherpa-onnx skips that column)."""
    names = [str(id2label[index]) for index in range(len(id2label))]
    bad = [name for name in names if '"' in name or "\n" in name]
    if bad:
        raise ValueError(f"sherpa-onnx's label file cannot hold names with quotes or line breaks; got {bad[:5]}")
    lines = ["index,mid,display_name\n", *(f'{index},,"{name}"\n' for index, name in enumerate(names))]
    path.write_text("".join(lines), encoding="utf-8")


def encoder_metadata(config) -> dict[str, object]:
    """Transducer encoder: `model_type` selects sherpa-onnx's Zipformer transducer recognizer."""
    return {"model_type": "zipformer2", "subsampling_factor": 4, "vocab_size": config.vocab_size}


def decoder_metadata(config) -> dict[str, object]:
    """Transducer decoder: sherpa-onnx reads `vocab_size` and `context_size` (required)."""
    _check_blank(config)
    return {"vocab_size": config.vocab_size, "context_size": config.context_size}


def joiner_metadata(config) -> dict[str, object]:
    return {"joiner_dim": config.joiner_dim, "vocab_size": config.vocab_size}


def ctc_metadata(config) -> dict[str, object]:
    """Zipformer CTC: `model_type` zipformer2_ctc selects sherpa-onnx's CTC recognizer when it must guess."""
    return {"model_type": "zipformer2_ctc", "subsampling_factor": 4, "vocab_size": config.vocab_size}


def speaker_metadata(config, sample_rate: int) -> dict[str, object]:
    """Speaker extractor: `framework`, `output_dim`, `sample_rate`, `normalize_samples`, `language` (all required)."""
    return {
        "framework": "wespeaker",
        "output_dim": config.speaker_embedding_dim,
        "sample_rate": sample_rate,
        "normalize_samples": 1,
        "language": "English",
    }


def _check_blank(config) -> None:
    if config.blank_id != SHERPA_BLANK_ID:
        raise ValueError(
            f"sherpa-onnx's transducer search assumes the blank is token {SHERPA_BLANK_ID}; this model's blank_id is "
            f"{config.blank_id}. Train with the blank at id 0 (MT2KDTokenizer's layout) to deploy with sherpa-onnx"
        )
