"""MT2KDProcessor: the feature extractor and the tokenizer behind one call."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import TensorType

from .feature_extraction_mt2kd import AudioArray, MT2KDFeatureExtractor
from .tokenization_mt2kd import MT2KDTokenizer

__all__ = ["LABEL_PADDING", "MT2KDProcessor"]

# Label positions ignored by the losses (PyTorch's cross-entropy default `ignore_index`).
LABEL_PADDING = -100


class MT2KDProcessor(ProcessorMixin):
    r"""Audio to `input_features` / `attention_mask` ([`MT2KDFeatureExtractor`]) and text to `labels`
    ([`MT2KDTokenizer`]); `decode` / `batch_decode` forward to the tokenizer (CTC collapse by default).

    Args:
        feature_extractor: the fbank front end.
        tokenizer: the BPE tokenizer of the ASR heads.
    """

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
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """Features for `audio` and/or `labels` for `text`.

        Args:
            audio: one recording or a list of them (layouts as in [`MT2KDFeatureExtractor.__call__`]).
            text: one transcript or a list, one per recording.
            sampling_rate: rate of `audio` in Hz (resampled to 16 kHz when different).
            return_tensors: `"pt"`, `"np"` or `None` (numpy arrays).

        Returns:
            `input_features` `(batch, frames, 80)` and `attention_mask` `(batch, frames)` for audio; `labels`
            `(batch, tokens)` token ids padded with -100 for text.
        """
        if audio is None and text is None:
            raise ValueError("MT2KDProcessor needs `audio`, `text` or both; got neither")
        outputs = BatchFeature()
        if audio is not None:
            outputs.update(self.feature_extractor(audio, sampling_rate=sampling_rate, return_tensors=return_tensors))
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if audio is not None and len(texts) != len(outputs["input_features"]):
                raise ValueError(
                    f"got {len(outputs['input_features'])} recordings but {len(texts)} transcripts; pass one "
                    "transcript per recording"
                )
            encoded = self.tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="np")
            outputs["labels"] = np.where(encoded["attention_mask"] == 1, encoded["input_ids"], LABEL_PADDING)
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
