"""Transcript, audio tags and speaker embedding of a recording from one encoder pass ([`MT2KDForMultiTask`])."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline

from .audio_classification import ranked_labels
from .audio_input import AudioInput, read_audio_input
from .chunking import AudioChunk, ChunkTokens, merge_chunk_tokens
from .hypotheses import hypotheses_to_tensors, tensors_to_tokens
from .windowing import WindowSettings, pool_windows, window_call_parameters, window_model_inputs, window_timestamp

__all__ = ["ASR_DECODERS", "MT2KDMultiTaskPipeline"]

ASR_DECODERS = ("ctc", "transducer")
DEFAULT_TOP_K = 5
# Tells "top_k not passed" (keep the value set at construction, else DEFAULT_TOP_K) from `top_k=None` (every label).
_NOT_GIVEN = object()


class MT2KDMultiTaskPipeline(ChunkPipeline):
    r"""Everything MT2KD does for a recording, from ONE encoder pass: transcript (CTC or transducer head), the top-k
    audio tags with sigmoid scores, and the speaker embedding.

    ```python
    >>> import processing_mt2kd  # registers the task
    >>> from transformers import pipeline
    >>> analyse = pipeline("mt2kd-multitask", model="path/to/mt2kd-folder")
    >>> analyse("speech.wav", top_k=3)
    {'text': 'HELLO WORLD', 'tags': [{'label': 'Speech', 'score': 0.93}, ...], 'speaker_embedding': array([...])}
    >>> analyse(["a.wav", "b.wav"], batch_size=2, asr_decoder="transducer", decoding_method="modified_beam_search")
    ```

    Inputs are those of the ASR pipelines (path, file bytes, `{"raw", "sampling_rate"}`, 16 kHz array, or a list;
    batched results equal one-at-a-time results). A recording up to `window_length_s` long goes through the encoder
    at once; longer ones go window by window in bounded memory (`processing_mt2kd.pipelines.windowing`): the
    transcript joins each window's tokens from the frames between its context, tags and speaker embedding pool the
    windows' outputs.

    Call parameters:
        asr_decoder: `"ctc"` (greedy CTC, as the `automatic-speech-recognition` pipeline decodes) or `"transducer"`;
            default `"ctc"` when the model has a CTC head, else `"transducer"`.
        decoding_method, beam: transducer search, `"greedy_search"` (default) or `"modified_beam_search"` with
            `beam` hypotheses (default 4).
        top_k: number of tags returned, highest score first (default 5; `None` = every label).
        window_length_s, window_overlap_s: window size and overlap in seconds (defaults 30 and 5).
        window_pooling: tags from the windows' mean logits (`"mean"`, default) or each label's highest score in any
            window (`"max"`).
        return_windows: also return `"windows"`: `[{"timestamp": (start_s, end_s), "tags", "speaker_embedding"}]`.

    Returns:
        `{"text": str, "tags": [{"label", "score"}], "speaker_embedding": (speaker_embedding_dim,) float32}`; a key is
        left out when the model was built without its head(s) (`config.use_ctc` and `use_transducer`,
        `use_audio_tagging`, `use_speaker` False).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: undecodable, empty, NaN or too short audio; an `asr_decoder` whose head the model lacks.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.model.config
        if "asr_decoder" not in self._forward_params and (config.use_ctc or config.use_transducer):
            self._forward_params["asr_decoder"] = self._check_asr_decoder("ctc" if config.use_ctc else "transducer")

    def _sanitize_parameters(
        self,
        asr_decoder: str | None = None,
        decoding_method: str | None = None,
        beam: int | None = None,
        top_k: int | None = _NOT_GIVEN,
        window_length_s: float | None = None,
        window_overlap_s: float | None = None,
        window_pooling: str | None = None,
        return_windows: bool | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, postprocess_params = window_call_parameters(
            window_length_s, window_overlap_s, window_pooling, return_windows
        )
        forward_params = {}
        if asr_decoder is not None:
            forward_params["asr_decoder"] = self._check_asr_decoder(asr_decoder)
        if decoding_method is not None:
            forward_params["decoding_method"] = decoding_method
        if beam is not None:
            if not isinstance(beam, int) or beam < 1:
                raise ValueError(f"beam must be a whole number >= 1 (e.g. 4); got {beam!r}")
            forward_params["beam"] = beam
        if top_k is not _NOT_GIVEN:
            num_labels = self.model.config.num_labels
            if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
                raise ValueError(
                    f"top_k must be a whole number >= 1, or None for all {num_labels} labels; got {top_k!r}"
                )
            postprocess_params["top_k"] = num_labels if top_k is None else top_k
        return preprocess_params, forward_params, postprocess_params

    def _check_asr_decoder(self, asr_decoder: str) -> str:
        if asr_decoder not in ASR_DECODERS:
            raise ValueError(f"asr_decoder must be one of {ASR_DECODERS}; got {asr_decoder!r}")
        flag = "use_ctc" if asr_decoder == "ctc" else "use_transducer"
        if not getattr(self.model.config, flag):
            other = "transducer" if asr_decoder == "ctc" else "ctc"
            raise ValueError(f"this model has no {asr_decoder} head (config.{flag}=False); pass asr_decoder='{other}'")
        return asr_decoder

    def preprocess(
        self, inputs: AudioInput, window_settings: WindowSettings = WindowSettings()
    ) -> Iterator[dict[str, Any]]:
        waveform = read_audio_input(inputs, self.feature_extractor)
        yield from window_model_inputs(
            waveform, self.feature_extractor, window_settings, self.model.config.inputs_to_logits_ratio
        )

    def _forward(
        self,
        model_inputs: dict[str, Any],
        asr_decoder: str | None = None,
        decoding_method: str = "greedy_search",
        beam: int = 4,
    ) -> dict[str, Any]:
        outputs = self.model(
            input_features=model_inputs.pop("input_features"), attention_mask=model_inputs.pop("attention_mask")
        )
        results = {"output_mask": outputs.attention_mask, **model_inputs}  # window positions and `is_last` pass
        if asr_decoder == "ctc":
            results["ctc_ids"] = outputs.ctc_logits.argmax(dim=-1)
        elif asr_decoder == "transducer":
            hypotheses = self.model.decode(outputs.last_hidden_state, outputs.attention_mask, decoding_method, beam)
            results.update(hypotheses_to_tensors(hypotheses))
        if outputs.tagging_logits is not None:
            results["tagging_logits"] = outputs.tagging_logits
        if outputs.speaker_embeddings is not None:
            results["speaker_embeddings"] = outputs.speaker_embeddings
        return results

    def postprocess(
        self,
        model_outputs: list[dict[str, Any]],
        top_k: int = DEFAULT_TOP_K,
        window_pooling: str = "mean",
        return_windows: bool = False,
    ) -> dict[str, Any]:
        windows = [AudioChunk.from_tensors(output) for output in model_outputs]
        first = model_outputs[0]
        result = {}
        if "ctc_ids" in first or "tokens" in first:
            result["text"] = self._transcript(model_outputs, windows)
        id2label = self.model.config.id2label
        window_results = [{"timestamp": window_timestamp(window, self.feature_extractor.sampling_rate)}
                          for window in windows]
        if "tagging_logits" in first:
            # multi-label: independent sigmoid scores per label
            logits = [output["tagging_logits"].reshape(-1).float() for output in model_outputs]
            if window_pooling == "max":
                scores = pool_windows([value.sigmoid() for value in logits], windows, "max")
            else:
                scores = pool_windows(logits, windows, "mean").sigmoid()
            result["tags"] = ranked_labels(scores, id2label, top_k)
            for window_result, value in zip(window_results, logits):
                window_result["tags"] = ranked_labels(value.sigmoid(), id2label, top_k)
        if "speaker_embeddings" in first:
            embeddings = [output["speaker_embeddings"].reshape(-1).float() for output in model_outputs]
            result["speaker_embedding"] = pool_windows(embeddings, windows).numpy()
            for window_result, embedding in zip(window_results, embeddings):
                window_result["speaker_embedding"] = embedding.numpy()
        if return_windows:
            result["windows"] = window_results
        return result

    def _transcript(self, model_outputs: list[dict[str, Any]], windows: list[AudioChunk]) -> str:
        """The text of the windows' tokens, each window's kept from the frames between its context."""
        samples_per_frame = self.model.config.inputs_to_logits_ratio
        pieces = []
        for output, window in zip(model_outputs, windows):
            if "ctc_ids" in output:
                # Only the valid frames: a padded batch must decode as each recording alone.
                ids = output["ctc_ids"].reshape(-1)[output["output_mask"].reshape(-1).bool()].tolist()
                pieces.append(ChunkTokens(window, ids, range(len(ids))))
            else:
                pieces.append(ChunkTokens(window, *tensors_to_tokens(output["tokens"], output["token_frames"])))
        tokens, _ = merge_chunk_tokens(pieces, samples_per_frame)
        if "ctc_ids" in model_outputs[0]:
            return self.tokenizer.decode(tokens)  # frame-level CTC ids: decode collapses repeats and blanks
        return self.tokenizer.decode(tokens, group_tokens=False)
