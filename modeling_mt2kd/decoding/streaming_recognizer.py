"""One stream of fbank frames in, partial transcripts (token ids with frames) out, as audio arrives."""

from __future__ import annotations

import torch

from ..encoder.streaming import LOG_EPS, LOOKAHEAD_FBANK_FRAMES, chunk_input_frames
from ..lengths import encoder_output_lengths
from .decoded_sequence import DecodedSequence
from .methods import CTC_DECODING_METHODS, TRANSDUCER_DECODING_METHODS
from .streaming_search import StreamingCTCSearch, StreamingGreedySearch, StreamingModifiedBeamSearch

# LOG_EPS frames appended at the end of a stream beyond the front end's look-ahead, so the last
# real frames reach the output (the authors' DecodeStream.set_features(tail_pad_len=30)).
TAIL_PADDING_FRAMES = 30
DECODING_METHODS = TRANSDUCER_DECODING_METHODS + CTC_DECODING_METHODS


class StreamingRecognizer:
    """Streaming recognition of one stream with a causal MT2KD model that has a transducer or CTC head.

    Feed fbank frames in any amounts with `accept_features`; every complete chunk
    (2 * chunk_size + 13 frames, advancing by 2 * chunk_size) is encoded and decoded at once, and the
    result so far is returned. `finish()` appends the authors' end-of-stream padding (13 + 30 LOG_EPS
    frames), decodes what is left and returns the final result; the stream then refuses more input.

    Args:
        model: a causal `MT2KDForRNNT`, `MT2KDForMultiTask` or `MT2KDForCTC`, in eval mode.
        decoding_method: "greedy_search" or "modified_beam_search" (transducer), or "ctc_greedy".
        chunk_size, left_context_frames: 50 Hz frames; default the model config's.
        blank_penalty: subtracted from the blank logit of the transducer (> 0 favours tokens).
        beam: hypotheses kept by modified_beam_search.
        keep_encoder_frames: encoder frames (25 Hz) kept for the utterance-level heads (`utterance_outputs`):
            0 keeps none (default), None the whole stream, n the last n frames (a sliding window, bounded memory).
    """

    def __init__(
        self,
        model,
        decoding_method: str = "greedy_search",
        chunk_size: int | None = None,
        left_context_frames: int | None = None,
        blank_penalty: float = 0.0,
        beam: int = 4,
        keep_encoder_frames: int | None = 0,
    ):
        if keep_encoder_frames is not None and (not isinstance(keep_encoder_frames, int) or keep_encoder_frames < 0):
            raise ValueError(f"keep_encoder_frames must be None (all), 0 (none) or a positive count; got {keep_encoder_frames!r}")
        if decoding_method not in DECODING_METHODS:
            raise ValueError(f"decoding_method must be one of {DECODING_METHODS}; got {decoding_method!r}")
        transducer = getattr(model, "transducer", None)
        ctc_head = getattr(model, "ctc_head", None)
        if decoding_method != "ctc_greedy" and transducer is None:
            raise ValueError(f"{type(model).__name__} has no transducer head; use decoding_method='ctc_greedy'")
        if decoding_method == "ctc_greedy" and ctc_head is None:
            raise ValueError(f"{type(model).__name__} has no CTC head; use decoding_method='greedy_search'")
        self.model = model
        self.decoding_method = decoding_method
        self.state = model.mt2kd.init_streaming_state(1, chunk_size, left_context_frames)
        device = self.state.processed_frames.device
        if decoding_method == "greedy_search":
            self.search = StreamingGreedySearch(transducer.predictor, transducer.joiner, 1, blank_penalty, device)
        elif decoding_method == "modified_beam_search":
            self.search = StreamingModifiedBeamSearch(transducer.predictor, transducer.joiner, 1, beam, blank_penalty)
        else:
            self.search = StreamingCTCSearch(model.config.blank_id, 1)
        self.buffer = torch.empty(0, model.config.num_mel_bins, device=device)
        self.finished = False
        self.chunks_done = 0
        self.keep_encoder_frames = keep_encoder_frames
        self.kept_frames = torch.empty(0, model.config.output_dim, device=device)
        self.encoder_frames_done = 0
        self.audio_fbank_frames = 0  # fbank frames of real audio (not the end-of-stream padding)

    @property
    def chunk_size(self) -> int:
        return self.state.chunk_size

    @property
    def result(self) -> DecodedSequence:
        """The tokens decoded so far (final after `finish()`)."""
        return self.search.results[0]

    def accept_features(self, features: torch.Tensor) -> DecodedSequence:
        """features (frames, num_mel_bins) fbank at 100 Hz, the next frames of the stream (any number, 0 allowed)."""
        if self.finished:
            raise RuntimeError("this stream has finished; start a new StreamingRecognizer for new audio")
        mel = self.model.config.num_mel_bins
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[1] != mel:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"expected fbank frames of shape (frames, {mel}); got {shape}")
        self.buffer = torch.cat([self.buffer, features.to(self.buffer)])
        self.audio_fbank_frames += features.shape[0]
        needed = chunk_input_frames(self.chunk_size)
        while self.buffer.shape[0] >= needed:
            self._decode_chunk(self.buffer[:needed])
        return self.result

    def finish(self) -> DecodedSequence:
        """Flush the stream with the end-of-stream padding; returns the final result."""
        if self.finished:
            return self.result
        padding = torch.full(
            (LOOKAHEAD_FBANK_FRAMES + TAIL_PADDING_FRAMES, self.buffer.shape[1]), LOG_EPS, device=self.buffer.device
        )
        self.buffer = torch.cat([self.buffer, padding])
        needed = chunk_input_frames(self.chunk_size)
        while self.buffer.shape[0] > 0:
            self._decode_chunk(self.buffer[:needed])
        self.finished = True
        return self.result

    @torch.no_grad()
    def _decode_chunk(self, features: torch.Tensor) -> None:
        output = self.model.mt2kd.streaming_forward(features.unsqueeze(0), self.state)
        self.state = output.state
        if self.decoding_method == "ctc_greedy":
            self.search.step(self.model.ctc_head(output.last_hidden_state))
        else:
            self.search.step(output.last_hidden_state)
        self.buffer = self.buffer[2 * self.chunk_size :]
        self.chunks_done += 1
        if self.keep_encoder_frames != 0:
            kept = torch.cat([self.kept_frames, output.last_hidden_state[0]])
            self.kept_frames = kept if self.keep_encoder_frames is None else kept[-self.keep_encoder_frames :]
        self.encoder_frames_done += output.last_hidden_state.shape[1]

    @torch.no_grad()
    def utterance_outputs(self) -> dict[str, torch.Tensor]:
        """Audio-tagging logits (num_labels,) and speaker embedding (speaker_embedding_dim,) over the kept encoder
        frames that come from real audio (not the end-of-stream padding), for the heads the model has: at the end
        of the stream (`keep_encoder_frames=None`) or over the last window so far."""
        if self.keep_encoder_frames == 0:
            raise RuntimeError("construct the recognizer with keep_encoder_frames=None (or a window) to get these")
        audio_frames = int(  # encoder frames of the real audio
            encoder_output_lengths(torch.tensor(self.audio_fbank_frames), self.model.config.output_downsampling_factor)
        )
        padding_frames = max(self.encoder_frames_done - audio_frames, 0)
        frames = self.kept_frames[: max(self.kept_frames.shape[0] - padding_frames, 0)].unsqueeze(0)
        if frames.shape[1] == 0:
            raise RuntimeError("no encoder frame of real audio yet; feed more audio first")
        mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        outputs = {}
        if getattr(self.model, "tagging_head", None) is not None:
            outputs["tagging_logits"] = self.model.tagging_head(frames, mask)[0]
        if getattr(self.model, "speaker_head", None) is not None:
            outputs["speaker_embedding"] = self.model.speaker_head(frames, mask)[0]
        return outputs
