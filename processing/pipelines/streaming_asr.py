"""Streaming speech recognition with a causal MT2KD model: audio pieces in, partial transcripts out.

```python
>>> import processing_mt2kd  # registers the task
>>> from transformers import pipeline
>>> asr = pipeline("mt2kd-streaming-asr", model="path/to/causal-mt2kd-folder")
>>> for partial in asr.stream(microphone_pieces(), sampling_rate=48000):  # any piece size, any rate
...     print(partial["text"], partial["is_final"])
>>> asr("speech.flac", return_timestamps="word")  # a whole recording, decoded as a stream
{'text': 'HELLO WORLD', 'chunks': [{'text': 'HELLO', 'timestamp': (0.32, 0.6)}, ...]}
```
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from transformers import Pipeline

from modeling_mt2kd.decoding.streaming_recognizer import DECODING_METHODS, StreamingRecognizer

from ..streaming_features import StreamingFeatureExtractor
from .audio_input import AudioInput, read_audio_input
from .timestamps import check_timestamp_level, transcript_with_timestamps

__all__ = ["MT2KDStreamingASRPipeline", "stream_transcripts"]


def stream_transcripts(
    model,
    feature_extractor,
    tokenizer,
    audio_pieces: Iterable,
    sampling_rate: int | None = None,
    decoding_method: str = "greedy_search",
    chunk_size: int | None = None,
    left_context_frames: int | None = None,
    return_timestamps: str | None = "word",
    beam: int = 4,
    top_k_tags: int = 0,
    return_speaker_embedding: bool = False,
) -> Iterator[dict[str, Any]]:
    """Transcribe one stream as its audio arrives.

    Args:
        model: a causal MT2KD model with a transducer (or CTC) head, in eval mode.
        feature_extractor, tokenizer: the model's front end and BPE tokenizer.
        audio_pieces: successive pieces of ONE recording (1-D arrays/tensors of samples, any length).
        sampling_rate: rate of the pieces in Hz (default 16000); fixed for the stream.
        decoding_method: "greedy_search" or "modified_beam_search" (transducer), or "ctc_greedy".
        chunk_size, left_context_frames: streaming chunk and left context in 50 Hz frames (default: the config's).
        return_timestamps: "word", "char" or None.
        beam: hypotheses kept by modified_beam_search (its partial result is the best hypothesis so far, which
            may change its earlier tokens).
        top_k_tags, return_speaker_embedding: with a multi-task model, the final result also holds `"tags"` (the
            `top_k_tags` best `{"label", "score"}`, sigmoid) and `"speaker_embedding"` over the whole stream.

    Yields:
        After every piece `{"text", "chunks" (with timestamps), "tokens", "audio_s", "is_final": False}`: the
        transcript so far (it only grows), then one last result with `"is_final": True` at the end of the stream.
        Times are seconds from the start of the stream. With greedy search the transcript only grows.
    """
    # Over 60 lines only by its docstring; the body is the feature -> recognizer -> transcript loop of one stream.
    return_timestamps = check_timestamp_level(return_timestamps)
    features = StreamingFeatureExtractor(feature_extractor, sampling_rate)
    utterance_level = bool(top_k_tags) or return_speaker_embedding
    recognizer = StreamingRecognizer(
        model, decoding_method, chunk_size, left_context_frames, beam=beam,
        keep_encoder_frames=None if utterance_level else 0,
    )
    samples_per_frame = model.config.inputs_to_logits_ratio
    rate = feature_extractor.sampling_rate

    def transcript(is_final: bool) -> dict[str, Any]:
        result = recognizer.result
        decoded = transcript_with_timestamps(
            tokenizer, result.tokens, result.frames, samples_per_frame, rate, return_timestamps
        )
        return {
            **decoded,
            "tokens": list(result.tokens),
            "audio_s": features.total_samples / rate,
            "is_final": is_final,
        }

    for piece in audio_pieces:
        frames = features.accept_waveform(piece, sampling_rate)
        recognizer.accept_features(torch.from_numpy(frames))
        yield transcript(False)
    recognizer.accept_features(torch.from_numpy(features.finish()))
    recognizer.finish()
    final = transcript(True)
    if utterance_level:
        final.update(utterance_results(model, recognizer.utterance_outputs(), top_k_tags, return_speaker_embedding))
    yield final


def utterance_results(model, outputs: dict, top_k_tags: int, return_speaker_embedding: bool) -> dict[str, Any]:
    """Top tags and the speaker embedding from `StreamingRecognizer.utterance_outputs()`."""
    results: dict[str, Any] = {}
    if top_k_tags:
        if "tagging_logits" not in outputs:
            raise ValueError(f"{type(model).__name__} has no audio-tagging head; load the model as MT2KDForMultiTask")
        scores = outputs["tagging_logits"].sigmoid()
        top = scores.topk(min(top_k_tags, scores.numel()))
        results["tags"] = [
            {"label": model.config.id2label[index], "score": score}
            for score, index in zip(top.values.tolist(), top.indices.tolist())
        ]
    if return_speaker_embedding:
        if "speaker_embedding" not in outputs:
            raise ValueError(f"{type(model).__name__} has no speaker head; load the model as MT2KDForMultiTask")
        results["speaker_embedding"] = outputs["speaker_embedding"].tolist()
    return results


class MT2KDStreamingASRPipeline(Pipeline):
    r"""Streaming recognition with a causal ([`MT2KDConfig.causal`]) transducer model.

    `asr.stream(pieces, sampling_rate=...)` is a generator of partial transcripts (see `stream_transcripts`);
    calling the pipeline on a whole recording (path, bytes, `{"raw", "sampling_rate"}` or a 16 kHz array) streams
    it in pieces of `stream_chunk_s` seconds and returns the final transcript, so it shows exactly what a live
    stream would have produced.

    Call parameters:
        decoding_method: "greedy_search" (default), "modified_beam_search" or "ctc_greedy".
        beam: hypotheses kept by modified_beam_search (default 4).
        chunk_size, left_context_frames: 50 Hz frames (default: the model config's).
        stream_chunk_s: piece length when a whole recording is streamed (default 0.1 s).
        return_timestamps: "word" or "char" for `"chunks"` with (start_s, end_s) per word / character.
        return_partials: also return `"partials"`, the transcript after every piece.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = True

    def _sanitize_parameters(
        self,
        decoding_method: str | None = None,
        chunk_size: int | None = None,
        left_context_frames: int | None = None,
        stream_chunk_s: float | None = None,
        return_timestamps: str | bool | None = None,
        return_partials: bool | None = None,
        beam: int | None = None,
    ) -> tuple[dict, dict, dict]:
        forward_params: dict[str, Any] = {}
        if decoding_method is not None:
            if decoding_method not in DECODING_METHODS:
                raise ValueError(f"decoding_method must be one of {DECODING_METHODS}; got {decoding_method!r}")
            forward_params["decoding_method"] = decoding_method
        if beam is not None:
            if not isinstance(beam, int) or beam < 1:
                raise ValueError(f"beam must be a whole number >= 1 (e.g. 4); got {beam!r}")
            forward_params["beam"] = beam
        if chunk_size is not None:
            forward_params["chunk_size"] = chunk_size
        if left_context_frames is not None:
            forward_params["left_context_frames"] = left_context_frames
        if stream_chunk_s is not None:
            if not isinstance(stream_chunk_s, (int, float)) or stream_chunk_s <= 0:
                raise ValueError(f"stream_chunk_s must be a positive number of seconds, e.g. 0.1; got {stream_chunk_s!r}")
            forward_params["stream_chunk_s"] = float(stream_chunk_s)
        if return_timestamps is not None:
            forward_params["return_timestamps"] = check_timestamp_level(return_timestamps)
        postprocess_params = {"return_partials": bool(return_partials)} if return_partials is not None else {}
        return {}, forward_params, postprocess_params

    def stream(self, audio_pieces: Iterable, sampling_rate: int | None = None, **kwargs) -> Iterator[dict[str, Any]]:
        """Partial transcripts of one live stream (see `stream_transcripts` for the arguments and results)."""
        _, forward_params, _ = self._sanitize_parameters(**kwargs)
        forward_params.pop("stream_chunk_s", None)
        yield from stream_transcripts(
            self.model, self.feature_extractor, self.tokenizer, audio_pieces, sampling_rate, **forward_params
        )

    def preprocess(self, inputs: AudioInput) -> dict[str, Any]:
        return {"waveform": read_audio_input(inputs, self.feature_extractor)}

    def _forward(
        self, model_inputs: dict[str, Any], stream_chunk_s: float = 0.1, return_timestamps: str | None = None, **params
    ) -> dict[str, Any]:
        waveform = model_inputs["waveform"]
        piece = max(int(round(stream_chunk_s * self.feature_extractor.sampling_rate)), 1)
        pieces = (waveform[start : start + piece] for start in range(0, len(waveform), piece))
        partials = list(
            stream_transcripts(
                self.model, self.feature_extractor, self.tokenizer, pieces, self.feature_extractor.sampling_rate,
                return_timestamps=return_timestamps, **params,
            )
        )
        return {"partials": partials}

    def postprocess(self, model_outputs: dict[str, Any], return_partials: bool = False) -> dict[str, Any]:
        partials = model_outputs["partials"]
        final = {key: value for key, value in partials[-1].items() if key in ("text", "chunks")}
        if return_partials:
            final["partials"] = partials
        return final
