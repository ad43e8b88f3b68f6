"""MT2KDProcessor: the feature extractor and the tokenizer behind one call, and the one encoder of transcripts into
ASR labels."""

# No `from __future__ import annotations`: transformers reads the TypedDicts' annotations as classes at run time.
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers import BatchFeature, ProcessorMixin
from transformers.processing_utils import AudioKwargs, ProcessingKwargs, Unpack

from configuration_mt2kd import IGNORE_INDEX

from .feature_extraction_mt2kd import AudioArray, MT2KDFeatureExtractor
from .tokenization_mt2kd import MT2KDTokenizer

__all__ = ["LABEL_PADDING", "MT2KDAudioKwargs", "MT2KDProcessingKwargs", "MT2KDProcessor", "encode_labels"]

# Label positions ignored by the CTC and transducer losses (the config's IGNORE_INDEX, PyTorch's default).
LABEL_PADDING = IGNORE_INDEX


class MT2KDAudioKwargs(AudioKwargs, total=False):
    """Audio keyword arguments of [`MT2KDProcessor`]: transformers' own plus

    Attributes:
        channel_axis (`int`, *optional*): the channel axis of multi-channel recordings (see
            [`MT2KDFeatureExtractor.__call__`]); `None`: mono recordings, a 2-D array is a batch.
    """

    channel_axis: int | None


class MT2KDProcessingKwargs(ProcessingKwargs, total=False):
    """The keyword arguments [`MT2KDProcessor.__call__`] accepts, by modality (typed, checked by transformers)."""

    audio_kwargs: MT2KDAudioKwargs


def encode_labels(tokenizer: MT2KDTokenizer, texts: Sequence[str], **text_kwargs: Any) -> np.ndarray:
    """`(batch, max_tokens)` int64 BPE ids of `texts`, padded with `LABEL_PADDING` (-100), at least one column: the
    `labels` of the CTC and transducer heads.

    The one owner of label encoding: [`MT2KDProcessor`] and the training collator both call it. `text_kwargs` are
    the tokenizer's (defaults: no special tokens, padded right to the longest text, as icefall encodes).
    """
    text_kwargs = {**MT2KDProcessor.text_kwargs, **text_kwargs, "return_tensors": "np"}
    texts = list(texts)
    if not texts:
        return np.full((0, 1), LABEL_PADDING, dtype=np.int64)
    encoded = tokenizer(texts, **text_kwargs)
    ids, mask = np.asarray(encoded["input_ids"], dtype=np.int64), np.asarray(encoded["attention_mask"])
    if ids.shape[1] == 0:  # every text blank
        return np.full((len(texts), 1), LABEL_PADDING, dtype=np.int64)
    return np.where(mask == 1, ids, LABEL_PADDING)


class MT2KDProcessor(ProcessorMixin):
    r"""Audio to `input_features` / `attention_mask` ([`MT2KDFeatureExtractor`]) and text to `labels`
    ([`MT2KDTokenizer`] through [`encode_labels`]); `decode` / `batch_decode` forward to the tokenizer (CTC collapse
    by default).

    Keyword arguments are typed ([`MT2KDProcessingKwargs`]) and merged as transformers' processors merge them:
    per call (flat, or per modality as `audio_kwargs={...}` / `text_kwargs={...}`) over the class defaults
    `audio_kwargs` and `text_kwargs` below.

    Args:
        feature_extractor: the fbank front end.
        tokenizer: the BPE tokenizer of the ASR heads.
    """

    valid_processor_kwargs = MT2KDProcessingKwargs
    # Defaults, lowest priority (transformers' processor attributes).
    audio_kwargs = {"padding": True, "return_attention_mask": True}
    text_kwargs = {"padding": True, "padding_side": "right", "add_special_tokens": False}

    def __init__(self, feature_extractor: MT2KDFeatureExtractor, tokenizer: MT2KDTokenizer):
        super().__init__(feature_extractor, tokenizer)

    @property
    def model_input_names(self) -> list[str]:
        return [*self.feature_extractor.model_input_names, "labels"]

    def __call__(
        self,
        audio: AudioArray | Sequence[AudioArray] | None = None,
        text: str | Sequence[str] | None = None,
        sampling_rate: int | None = None,
        **kwargs: Unpack[MT2KDProcessingKwargs],
    ) -> BatchFeature:
        """Features for `audio` and/or `labels` for `text`.

        Args:
            audio: one recording, a `(batch, samples)` array or a list of recordings (layouts as in
                [`MT2KDFeatureExtractor.__call__`]; `channel_axis=` for multi-channel audio).
            text: one transcript or a list, one per recording.
            sampling_rate: rate of `audio` in Hz (resampled to 16 kHz when different; `None` assumes 16 kHz and
                warns).
            kwargs: [`MT2KDProcessingKwargs`], e.g. `return_tensors="pt"`, `padding="max_length"`, `max_length=`.

        Returns:
            `input_features` `(batch, frames, 80)` and `attention_mask` `(batch, frames)` for audio; `labels`
            `(batch, tokens)` token ids padded with -100 for text.
        """
        if audio is None and text is None:
            raise ValueError("MT2KDProcessor needs `audio`, `text` or both; got neither")
        output_kwargs = self._merge_kwargs(
            MT2KDProcessingKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
        )
        audio_kwargs, text_kwargs = output_kwargs["audio_kwargs"], output_kwargs["text_kwargs"]
        return_tensors = audio_kwargs.pop("return_tensors", None) or text_kwargs.pop("return_tensors", None)
        text_kwargs.pop("return_tensors", None)
        outputs = BatchFeature()
        if audio is not None:
            outputs.update(self.feature_extractor(audio, sampling_rate=sampling_rate, **audio_kwargs))
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if audio is not None and len(texts) != len(outputs["input_features"]):
                raise ValueError(
                    f"got {len(outputs['input_features'])} recordings but {len(texts)} transcripts; pass one "
                    "transcript per recording"
                )
            outputs["labels"] = encode_labels(self.tokenizer, texts, **text_kwargs)
        return BatchFeature(dict(outputs), tensor_type=return_tensors)

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, processor_dict: dict | None = None, **kwargs
    ) -> list:
        # Load the two parts by class rather than through AutoFeatureExtractor / AutoTokenizer, so that
        # `MT2KDProcessor.from_pretrained` works whether or not the Auto classes were registered.
        return [
            MT2KDFeatureExtractor.from_pretrained(pretrained_model_name_or_path, **kwargs),
            MT2KDTokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs),
        ]
