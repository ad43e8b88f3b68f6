"""Transcript, audio tags and speaker embedding of a recording from one encoder pass ([`MT2KDForMultiTask`])."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline

from .audio_input import AudioInput, audio_to_features, read_audio_input
from .hypotheses import hypotheses_to_tensors, tensors_to_tokens

__all__ = ["ASR_DECODERS", "MT2KDMultiTaskPipeline"]

ASR_DECODERS = ("ctc", "transducer")
DEFAULT_TOP_K = 5
# Tells "top_k not passed" (keep the value set at construction, else DEFAULT_TOP_K) from `top_k=None` (every label).
_NOT_GIVEN = object()


class MT2KDMultiTaskPipeline(Pipeline):
    r"""Everything MT2KD does for a recording, from ONE encoder pass: transcript (CTC or transducer head), the top-k
    audio tags with sigmoid scores, and the speaker embedding.

    ```python
    >>> import modeling_mt2kd  # registers the task
    >>> from transformers import pipeline
    >>> analyse = pipeline("mt2kd-multitask", model="path/to/mt2kd-folder")
    >>> analyse("speech.wav", top_k=3)
    {'text': 'HELLO WORLD', 'tags': [{'label': 'Speech', 'score': 0.93}, ...], 'speaker_embedding': array([...])}
    >>> analyse(["a.wav", "b.wav"], batch_size=2, asr_decoder="transducer", decoding_method="modified_beam_search")
    ```

    Inputs are those of the ASR pipelines (path, file bytes, `{"raw", "sampling_rate"}`, 16 kHz array, or a list;
    batched results equal one-at-a-time results). The whole recording goes through the encoder at once (tags and
    speaker embedding are clip-level); use the ASR pipelines' `chunk_length_s` for long-form transcription.

    Call parameters:
        asr_decoder: `"ctc"` (greedy CTC, as the `automatic-speech-recognition` pipeline decodes) or `"transducer"`;
            default `"ctc"` when the model has a CTC head, else `"transducer"`.
        decoding_method, beam: transducer search, `"greedy_search"` (default) or `"modified_beam_search"` with
            `beam` hypotheses (default 4).
        top_k: number of tags returned, highest score first (default 5; `None` = every label).

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
    ) -> tuple[dict, dict, dict]:
        forward_params = {}
        if asr_decoder is not None:
            forward_params["asr_decoder"] = self._check_asr_decoder(asr_decoder)
        if decoding_method is not None:
            forward_params["decoding_method"] = decoding_method
        if beam is not None:
            if not isinstance(beam, int) or beam < 1:
                raise ValueError(f"beam must be a whole number >= 1 (e.g. 4); got {beam!r}")
            forward_params["beam"] = beam
        postprocess_params = {}
        if top_k is not _NOT_GIVEN:
            num_labels = self.model.config.num_labels
            if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
                raise ValueError(
                    f"top_k must be a whole number >= 1, or None for all {num_labels} labels; got {top_k!r}"
                )
            postprocess_params["top_k"] = num_labels if top_k is None else top_k
        return {}, forward_params, postprocess_params

    def _check_asr_decoder(self, asr_decoder: str) -> str:
        if asr_decoder not in ASR_DECODERS:
            raise ValueError(f"asr_decoder must be one of {ASR_DECODERS}; got {asr_decoder!r}")
        flag = "use_ctc" if asr_decoder == "ctc" else "use_transducer"
        if not getattr(self.model.config, flag):
            other = "transducer" if asr_decoder == "ctc" else "ctc"
            raise ValueError(f"this model has no {asr_decoder} head (config.{flag}=False); pass asr_decoder='{other}'")
        return asr_decoder

    def preprocess(self, inputs: AudioInput) -> dict[str, torch.Tensor]:
        return audio_to_features(read_audio_input(inputs, self.feature_extractor), self.feature_extractor)

    def _forward(
        self,
        model_inputs: dict[str, torch.Tensor],
        asr_decoder: str | None = None,
        decoding_method: str = "greedy_search",
        beam: int = 4,
    ) -> dict[str, torch.Tensor]:
        outputs = self.model(**model_inputs)
        results = {"output_mask": outputs.attention_mask}
        if asr_decoder == "ctc":
            results["ctc_ids"] = outputs.ctc_logits.argmax(dim=-1)
        elif asr_decoder == "transducer":
            hypotheses = self.model.decode_transducer(
                outputs.last_hidden_state, outputs.attention_mask, decoding_method, beam
            )
            results.update(hypotheses_to_tensors(hypotheses))
        if outputs.tagging_logits is not None:
            results["tagging_logits"] = outputs.tagging_logits
        if outputs.speaker_embeddings is not None:
            results["speaker_embeddings"] = outputs.speaker_embeddings
        return results

    def postprocess(self, model_outputs: dict[str, torch.Tensor], top_k: int = DEFAULT_TOP_K) -> dict[str, Any]:
        result = {}
        if "ctc_ids" in model_outputs:
            # Only the valid frames: a padded batch must decode as each recording alone.
            valid_ids = model_outputs["ctc_ids"][0][model_outputs["output_mask"][0].bool()]
            result["text"] = self.tokenizer.decode(valid_ids.tolist())
        elif "tokens" in model_outputs:
            tokens, _ = tensors_to_tokens(model_outputs["tokens"], model_outputs["token_frames"])
            result["text"] = self.tokenizer.decode(tokens, group_tokens=False)
        if "tagging_logits" in model_outputs:
            probabilities = model_outputs["tagging_logits"][0].float().sigmoid()  # multi-label: independent scores
            scores, label_ids = probabilities.topk(min(top_k, len(probabilities)))
            id2label = self.model.config.id2label
            result["tags"] = [
                {"label": id2label[label_id], "score": score}
                for score, label_id in zip(scores.tolist(), label_ids.tolist())
            ]
        if "speaker_embeddings" in model_outputs:
            result["speaker_embedding"] = model_outputs["speaker_embeddings"][0].float().numpy()
        return result
