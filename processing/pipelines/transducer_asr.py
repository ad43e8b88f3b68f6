"""Speech recognition with the MT2KD transducer head: greedy or beam search, long-form by chunks, word timestamps."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from transformers.pipelines.base import ChunkPipeline

from .audio_input import AudioInput, audio_to_features, read_audio_input
from .chunking import AudioChunk, ChunkLayout, ChunkTokens, merge_chunk_tokens
from .hypotheses import hypotheses_to_tensors, tensors_to_tokens
from .timestamps import check_timestamp_level, transcript_with_timestamps

__all__ = ["MT2KDTransducerASRPipeline"]


class MT2KDTransducerASRPipeline(ChunkPipeline):
    r"""Transcribe speech with a stateless transducer ([`MT2KDForRNNT`]), called like the transformers
    `automatic-speech-recognition` pipeline.

    ```python
    >>> import processing_mt2kd  # registers the task
    >>> from transformers import pipeline
    >>> asr = pipeline("mt2kd-transducer-asr", model="path/to/mt2kd-folder")
    >>> asr("speech.flac", decoding_method="modified_beam_search", beam=4, return_timestamps="word")
    {'text': 'HELLO WORLD', 'chunks': [{'text': 'HELLO', 'timestamp': (0.32, 0.6)}, ...]}
    >>> asr(["a.wav", "b.wav"], batch_size=2)  # one result per input; equal to one-at-a-time calls
    ```

    Inputs (one, or a list of them): a path, the bytes of an audio file (soundfile: WAV, FLAC, Ogg, MP3; no ffmpeg),
    `{"raw": samples, "sampling_rate": Hz}` (or `"array"`), or a numpy array / torch tensor at 16 kHz. Stereo is
    averaged, other rates are resampled.

    Call parameters:
        decoding_method: `"greedy_search"` (default) or `"modified_beam_search"`.
        beam: hypotheses kept by beam search (default 4).
        chunk_length_s: decode long recordings in chunks of this many seconds (default: the whole recording in one
            pass). Each chunk sees `stride_length_s` seconds of context on both sides (default `chunk_length_s / 6`,
            or a `(left, right)` pair); tokens are kept from the chunk whose centre holds their frame, so memory
            is bounded by the chunk and the transcript does not repeat at chunk borders.
        return_timestamps: `"word"` or `"char"`: also return `"chunks"`, each `{"text", "timestamp": (start_s,
            end_s)}`; a token's time is its 25 Hz encoder frame (`inputs_to_logits_ratio` = 640 samples = 40 ms).

    Returns:
        `{"text": str}`, plus `"chunks"` with timestamps.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: undecodable, empty, NaN or too short audio; a bad parameter.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = True

    def _sanitize_parameters(
        self,
        chunk_length_s: float | None = None,
        stride_length_s: float | Sequence[float] | None = None,
        decoding_method: str | None = None,
        beam: int | None = None,
        return_timestamps: str | bool | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, forward_params, postprocess_params = {}, {}, {}
        if chunk_length_s is not None:
            preprocess_params["chunk_length_s"] = chunk_length_s
        if stride_length_s is not None:
            preprocess_params["stride_length_s"] = stride_length_s
        if decoding_method is not None:
            forward_params["decoding_method"] = decoding_method
        if beam is not None:
            if not isinstance(beam, int) or beam < 1:
                raise ValueError(f"beam must be a whole number >= 1 (e.g. 4); got {beam!r}")
            forward_params["beam"] = beam
        if return_timestamps is not None:
            postprocess_params["return_timestamps"] = check_timestamp_level(return_timestamps)
        return preprocess_params, forward_params, postprocess_params

    def preprocess(
        self,
        inputs: AudioInput,
        chunk_length_s: float | None = None,
        stride_length_s: float | Sequence[float] | None = None,
    ) -> Iterator[dict[str, Any]]:
        waveform = read_audio_input(inputs, self.feature_extractor)
        if chunk_length_s:
            layout = ChunkLayout.from_seconds(
                chunk_length_s, stride_length_s, self.feature_extractor.sampling_rate,
                self.model.config.inputs_to_logits_ratio,
            )
            chunks = layout.chunks(len(waveform))
        else:
            chunks = iter([AudioChunk(start=0, end=len(waveform))])
        for chunk in chunks:
            yield {
                **audio_to_features(waveform[chunk.start : chunk.end], self.feature_extractor),
                **chunk.as_tensors(),
                "is_last": chunk.end >= len(waveform),
            }

    def _forward(
        self, model_inputs: dict[str, Any], decoding_method: str = "greedy_search", beam: int = 4
    ) -> dict[str, Any]:
        hypotheses = self.model.generate(
            model_inputs.pop("input_features"),
            attention_mask=model_inputs.pop("attention_mask"),
            decoding_method=decoding_method,
            beam=beam,
        )
        # The chunk positions and `is_last` pass through untouched.
        return {**hypotheses_to_tensors(hypotheses), **model_inputs}

    def postprocess(self, model_outputs: list[dict[str, Any]], return_timestamps: str | None = None) -> dict[str, Any]:
        samples_per_frame = self.model.config.inputs_to_logits_ratio
        pieces = [
            ChunkTokens(AudioChunk.from_tensors(output), *tensors_to_tokens(output["tokens"], output["token_frames"]))
            for output in model_outputs
        ]
        tokens, frames = merge_chunk_tokens(pieces, samples_per_frame)
        return transcript_with_timestamps(
            self.tokenizer, tokens, frames, samples_per_frame, self.feature_extractor.sampling_rate, return_timestamps
        )
