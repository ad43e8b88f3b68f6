"""The one decoding entry of the ASR models: `generate` (fbank in) and `decode` (encoder output in), which pick
the search by name, so pipelines and evaluation name a method instead of choosing search functions."""

from __future__ import annotations

import torch

from .decoding import DecodedSequence, ctc_greedy_decode, greedy_search, modified_beam_search
from .decoding.methods import CTC_DECODING_METHODS, TRANSDUCER_DECODING_METHODS
from .masks import mask_to_lengths


def decode_transducer(
    transducer: torch.nn.Module,
    encoder_out: torch.Tensor,
    encoder_lengths: torch.Tensor,
    decoding_method: str = "greedy_search",
    beam: int = 4,
    max_symbols_per_frame: int = 1,
) -> list[DecodedSequence]:
    """Run the named transducer search (`TRANSDUCER_DECODING_METHODS`) over (batch, frames, hidden) encoder output
    with (batch,) valid frames, through `transducer`'s predictor and joiner."""
    if decoding_method == "greedy_search":
        return greedy_search(
            encoder_out, encoder_lengths, transducer.predictor, transducer.joiner, max_symbols_per_frame
        )
    if decoding_method == "modified_beam_search":
        return modified_beam_search(encoder_out, encoder_lengths, transducer.predictor, transducer.joiner, beam)
    raise ValueError(f"decoding_method must be one of {TRANSDUCER_DECODING_METHODS}; got {decoding_method!r}")


class MT2KDGenerationMixin:
    """`generate` and `decode` for the models with ASR heads (`ctc_head` and/or `transducer` attributes)."""

    @property
    def decoding_methods(self) -> tuple[str, ...]:
        """The methods this model's heads allow, its default (the transducer's greedy search, else CTC's) first."""
        methods = TRANSDUCER_DECODING_METHODS if getattr(self, "transducer", None) is not None else ()
        if getattr(self, "ctc_head", None) is not None:
            methods += CTC_DECODING_METHODS
        return methods

    @torch.no_grad()
    def generate(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoding_method: str | None = None,
        beam: int = 4,
        max_symbols_per_frame: int = 1,
    ) -> list[DecodedSequence]:
        """Encode (batch, frames, num_mel_bins) fbank at 100 Hz with its (batch, frames) mask and decode it: per
        utterance the token ids and the 25 Hz frame of each token (see `decode` for the arguments)."""
        encoded = self._encode(input_features, attention_mask, False, False, None)
        return self.decode(
            encoded.last_hidden_state, encoded.attention_mask, decoding_method, beam, max_symbols_per_frame
        )

    @torch.no_grad()
    def decode(
        self,
        encoder_out: torch.Tensor,
        attention_mask: torch.Tensor,
        decoding_method: str | None = None,
        beam: int = 4,
        max_symbols_per_frame: int = 1,
    ) -> list[DecodedSequence]:
        """Decode this model's encoder output (batch, frames, hidden) at 25 Hz with its (batch, frames) mask, e.g.
        `last_hidden_state` and `attention_mask` of a forward pass whose other heads were used too.

        Args:
            decoding_method: one of `decoding_methods`: "greedy_search" or "modified_beam_search" (transducer),
                "ctc_greedy" (CTC best path); None = the model's default.
            beam: hypotheses kept by modified_beam_search.
            max_symbols_per_frame: symbols the transducer's greedy search may emit per frame.
        """
        methods = self.decoding_methods
        method = methods[0] if decoding_method is None and methods else decoding_method
        if method not in methods:
            raise ValueError(
                f"{type(self).__name__} cannot decode with decoding_method={method!r}; its heads allow {list(methods)}"
            )
        lengths = mask_to_lengths(attention_mask)
        if method in CTC_DECODING_METHODS:
            logits = self.ctc_head(encoder_out, attention_mask.bool())
            return ctc_greedy_decode(logits, lengths, self.config.blank_id)
        return decode_transducer(self.transducer, encoder_out, lengths, method, beam, max_symbols_per_frame)
