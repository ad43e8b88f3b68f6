"""SentencePiece tokenizer in icefall's layout (`<blk>` = 0, `<sos/eos>` = 1, `<unk>` = 2), with CTC decoding."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sentencepiece
from sentencepiece import sentencepiece_model_pb2
from transformers.tokenization_utils_sentencepiece import SentencePieceBackend
from transformers.utils import ModelOutput

__all__ = ["MT2KDTokenizer", "MT2KDTokenizerOutput", "train_bpe_tokenizer"]

WORD_BOUNDARY = "\u2581"  # "▁", sentencepiece's marker for a piece that starts a word
TEXT_CASES = ("auto", "upper", "lower", "keep")


@dataclass
class MT2KDTokenizerOutput(ModelOutput):
    """A decoded sequence with its timing, in frames of the token sequence that was decoded.

    Args:
        text: the transcript.
        char_offsets: one dict per character of `text`: `{"char", "start_offset", "end_offset"}`; a character
            spans the frames of the BPE piece it comes from (end exclusive).
        word_offsets: one dict per space-separated word: `{"word", "start_offset", "end_offset"}`.
    """

    text: str | None = None
    char_offsets: list[dict[str, str | int]] | None = None
    word_offsets: list[dict[str, str | int]] | None = None


class MT2KDTokenizer(SentencePieceBackend):
    r"""SentencePiece tokenizer for the MT2KD CTC and transducer heads; loads icefall's `bpe.model` as it is.

    Special pieces come from the model file: the blank (`blank_token` / `blank_token_id`, a named special token) is
    the piece `<blk>` (else id 0) and doubles as the padding token; `<sos/eos>` (when present) is the BOS and EOS
    token; the unknown token is the model's unknown piece. Encoding adds no special tokens, as icefall's recipes do.

    Casing: icefall's LibriSpeech models have upper-case pieces only, so text in another case would encode to
    `<unk>`. `text_case="auto"` (default) reads the model's pieces and upper-cases (or lower-cases) text before
    encoding when every cased piece is upper (lower) case, and keeps text as it is when the pieces mix cases.
    Decoding returns the pieces' own casing. Punctuation absent from the pieces encodes to `<unk>`.

    Decoding (`decode` / `batch_decode`) drops the blank always; `group_tokens=True` (default, the CTC rule used by
    the `automatic-speech-recognition` pipeline) first merges runs of the same id into one token, so pass
    `group_tokens=False` for transducer hypotheses and labels, where repeats are real.

    Args:
        vocab_file: path of the sentencepiece model (icefall's `data/lang_bpe_500/bpe.model`).
        blank_token: CTC / transducer blank; default: `<blk>` if the model has it, else the piece with id 0.
        text_case: `"auto"`, `"upper"`, `"lower"` or `"keep"` (see above); saved resolved.
    """

    vocab_files_names = {"vocab_file": "bpe.model"}
    model_input_names = ["input_ids", "attention_mask"]
    # The automatic-speech-recognition pipeline reads this to split words in `return_timestamps="word"`.
    replace_word_delimiter_char = " "

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        blank_token: str | None = None,
        text_case: str = "auto",
        **kwargs,
    ):
        if text_case not in TEXT_CASES:
            raise ValueError(f"text_case must be one of {TEXT_CASES}; got {text_case!r}")
        if vocab_file is None or not os.path.isfile(vocab_file):
            # sentencepiece would say `NOT_FOUND: "None"`; name the file instead.
            raise ValueError(
                f"the tokenizer's SentencePiece model bpe.model is missing (vocab_file={vocab_file!r}); copy the "
                "bpe.model the model was trained with into the model folder"
            )
        model = sentencepiece.SentencePieceProcessor(model_file=str(vocab_file))
        pieces = [model.id_to_piece(index) for index in range(model.get_piece_size())]
        if blank_token is None:
            blank_token = "<blk>" if "<blk>" in pieces else pieces[0]
        elif blank_token not in pieces:
            raise ValueError(
                f"blank_token={blank_token!r} is not a piece of {vocab_file}; leave it unset to use '<blk>' or id 0"
            )
        if text_case == "auto":
            text_case = _case_of_pieces(model)
        kwargs.setdefault("pad_token", blank_token)
        kwargs.setdefault("unk_token", model.id_to_piece(model.unk_id()))
        if "<sos/eos>" in pieces:
            kwargs.setdefault("bos_token", "<sos/eos>")
            kwargs.setdefault("eos_token", "<sos/eos>")
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        kwargs.setdefault("special_tokens_pattern", "none")
        self.text_case = text_case
        super().__init__(vocab_file=str(vocab_file), blank_token=blank_token, text_case=text_case, **kwargs)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        # Called on the text between special tokens only, so `<blk>` etc. in the input keep their case.
        if self.text_case == "upper":
            text = text.upper()
        elif self.text_case == "lower":
            text = text.lower()
        return super()._tokenize(text, **kwargs)

    def _decode(
        self,
        token_ids: int | list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        group_tokens: bool = True,
        output_char_offsets: bool = False,
        output_word_offsets: bool = False,
    ) -> str | MT2KDTokenizerOutput:
        """Text of one id sequence; with offsets, an [`MT2KDTokenizerOutput`] whose offsets index `token_ids`."""
        token_ids = [token_ids] if isinstance(token_ids, int) else [int(index) for index in token_ids]
        out_of_range = [index for index in token_ids if not 0 <= index < len(self)]
        if out_of_range:
            raise ValueError(
                f"token id {out_of_range[0]} is outside the vocabulary [0, {len(self)}); replace label padding "
                f"(-100) with tokenizer.pad_token_id ({self.pad_token_id}) before decoding"
            )
        # (id, first frame, end frame) per emitted token
        if group_tokens:
            spans, frame = [], 0
            for index, run in itertools.groupby(token_ids):
                run_length = len(list(run))
                spans.append((index, frame, frame + run_length))
                frame += run_length
        else:
            spans = [(index, frame, frame + 1) for frame, index in enumerate(token_ids)]
        dropped = set(self.all_special_ids) if skip_special_tokens else set()
        dropped.add(self.blank_token_id)
        spans = [span for span in spans if span[0] not in dropped]

        char_offsets = []
        for token, (_, start, end) in zip(self.convert_ids_to_tokens([span[0] for span in spans]), spans):
            for char in token.replace(WORD_BOUNDARY, " "):
                if char == " " and (not char_offsets or char_offsets[-1]["char"] == " "):
                    continue  # no leading or doubled spaces
                char_offsets.append({"char": char, "start_offset": start, "end_offset": end})
        if char_offsets and char_offsets[-1]["char"] == " ":
            char_offsets.pop()
        text = "".join(offset["char"] for offset in char_offsets)

        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            text = self.clean_up_tokenization(text)
        if not (output_char_offsets or output_word_offsets):
            return text
        return MT2KDTokenizerOutput(
            text=text,
            char_offsets=char_offsets if output_char_offsets else None,
            word_offsets=self._get_word_offsets(char_offsets, self.replace_word_delimiter_char)
            if output_word_offsets
            else None,
        )

    @staticmethod
    def _get_word_offsets(
        char_offsets: list[dict[str, str | int]], word_delimiter_char: str = " "
    ) -> list[dict[str, str | int]]:
        """Group character offsets into words split at `word_delimiter_char` (the ASR pipeline calls this)."""
        word_offsets = []
        for is_delimiter, group in itertools.groupby(char_offsets, key=lambda o: o["char"] == word_delimiter_char):
            if is_delimiter:
                continue
            group = list(group)
            word_offsets.append(
                {
                    "word": "".join(offset["char"] for offset in group),
                    "start_offset": group[0]["start_offset"],
                    "end_offset": group[-1]["end_offset"],
                }
            )
        return word_offsets


def _case_of_pieces(model: sentencepiece.SentencePieceProcessor) -> str:
    """`"upper"` / `"lower"` when every cased letter of the normal pieces has that case, else `"keep"`."""
    # Only NORMAL pieces: `<blk>`, `<sos/eos>` (user-defined) and `<unk>` say nothing about the text's casing.
    proto = sentencepiece_model_pb2.ModelProto.FromString(model.serialized_model_proto())
    normal = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    letters = "".join(piece.piece for piece in proto.pieces if piece.type == normal)
    has_upper = any(char.isupper() for char in letters)
    has_lower = any(char.islower() for char in letters)
    if has_upper and not has_lower:
        return "upper"
    if has_lower and not has_upper:
        return "lower"
    return "keep"


def train_bpe_tokenizer(
    texts: Iterable[str] | os.PathLike,
    output_dir: str | os.PathLike,
    vocab_size: int = 500,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
) -> MT2KDTokenizer:
    """Train a sentencepiece model the way icefall's `local/train_bpe_model.py` does and load it.

    icefall's "BPE" models are sentencepiece `unigram` models with the user-defined pieces `<blk>` (id 0) and
    `<sos/eos>` (id 1), `<unk>` at id 2, no BOS/EOS pieces and full character coverage. Text is used as given (no
    case or punctuation normalisation; icefall trains on upper-case LibriSpeech transcripts).

    Args:
        texts: sentences, or a `Path` to a UTF-8 text file with one sentence per line.
        output_dir: folder that receives `bpe.model` and `bpe.vocab` (created if missing).
        vocab_size: number of pieces, special pieces included.
        model_type: sentencepiece model type: `"unigram"` (icefall) or `"bpe"`.
        character_coverage: fraction of characters the pieces must cover.

    Returns:
        An [`MT2KDTokenizer`] on the new `output_dir/bpe.model`.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(texts, (str, os.PathLike)):
        if not Path(texts).is_file():
            raise ValueError(
                f"texts={str(texts)!r} is not an existing file; pass a Path to a text file (one sentence per line) "
                "or a list of sentences"
            )
        source = {"input": str(texts)}
    else:
        sentences = [sentence for sentence in texts if sentence.strip()]
        if not sentences:
            raise ValueError("texts holds no non-empty sentence; pass the transcripts to train on")
        source = {"sentence_iterator": iter(sentences)}
    try:
        sentencepiece.SentencePieceTrainer.train(
            **source,
            model_prefix=str(output_dir / "bpe"),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=100_000_000,
            user_defined_symbols=["<blk>", "<sos/eos>"],
            unk_id=2,
            bos_id=-1,
            eos_id=-1,
            minloglevel=2,
        )
    except RuntimeError as error:
        raise ValueError(
            f"sentencepiece could not train a {model_type} model with vocab_size={vocab_size}: "
            f"{str(error).rstrip('.')}. A too-small text for the vocabulary is the usual cause: lower vocab_size or "
            "add text"
        ) from error
    return MT2KDTokenizer(vocab_file=output_dir / "bpe.model")
