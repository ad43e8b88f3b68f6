"""What a streaming (causal) encoder carries from one chunk to the next.

Everything is batch-first: row b of every tensor belongs to stream b. Frame counts are at each
stack's own rate (50 Hz / downsampling_factor); `left_context_frames` is in 50 Hz frames.

Per Zipformer layer (`LayerStreamingCache`, layers in order: stacks in order, layers within a stack):
- key:               (batch, left, num_heads * query_head_dim)  attention keys of the last `left` frames
- nonlin_attention:  (batch, left, 3 * embed_dim // 4)          NonlinAttention's tanh-gated values
- value1, value2:    (batch, left, num_heads * value_head_dim)  values of the two self-attentions
- conv1, conv2:      (batch, embed_dim, cnn_module_kernel // 2) inputs of the chunk-causal
                     convolutions (after gating and padding mask) for their left context
with left = left_context_frames // downsampling_factor of the layer's stack.

Front end and bookkeeping (`EncoderStreamingState`):
- embed_left_context: (batch, subsampling_channels[2], 3, freqs) the ConvNeXt's left context: the
  last 3 convolution-output frames of the previous chunk before its 3 look-ahead frames (zeros at
  the start, as the full forward's zero padding);
- processed_frames:  (batch,) int64, 50 Hz frames processed so far; cache slots that never
  received a frame (the first chunks) are masked out of attention with it.

`to_icefall_list()` / `from_icefall_list()` convert to and from the authors' flat state list
(6 tensors per layer, then the front-end cache, then processed lengths; time-major caches), e.g.
for sherpa-onnx or to compare with the authors' numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class LayerStreamingCache:
    """Cached left context of one Zipformer layer (see the module docstring for shapes)."""

    key: torch.Tensor
    nonlin_attention: torch.Tensor
    value1: torch.Tensor
    value2: torch.Tensor
    conv1: torch.Tensor
    conv2: torch.Tensor

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.key, self.nonlin_attention, self.value1, self.value2, self.conv1, self.conv2)


@dataclass(frozen=True)
class EncoderStreamingState:
    """The whole encoder's streaming state for a batch of streams (see the module docstring).

    chunk_size and left_context_frames (50 Hz frames) are fixed for the life of a state; the state
    is never modified in place: `streaming_forward` returns a new one.
    """

    chunk_size: int
    left_context_frames: int
    layers: tuple[LayerStreamingCache, ...]
    embed_left_context: torch.Tensor
    processed_frames: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.processed_frames.shape[0]

    def select(self, streams: torch.Tensor | list[int]) -> "EncoderStreamingState":
        """The state of a subset of the streams (e.g. to drop finished ones), in the given order."""
        index = torch.as_tensor(streams, dtype=torch.long, device=self.processed_frames.device)
        return replace(
            self,
            layers=tuple(LayerStreamingCache(*(t.index_select(0, index) for t in layer.tensors())) for layer in self.layers),
            embed_left_context=self.embed_left_context.index_select(0, index),
            processed_frames=self.processed_frames.index_select(0, index),
        )

    @staticmethod
    def concatenate(states: list["EncoderStreamingState"]) -> "EncoderStreamingState":
        """One state for the streams of several states (same model and chunk settings), in order."""
        first = states[0]
        for other in states[1:]:
            if (other.chunk_size, other.left_context_frames) != (first.chunk_size, first.left_context_frames):
                raise ValueError(
                    "cannot batch streaming states with different chunk settings: "
                    f"{(first.chunk_size, first.left_context_frames)} and {(other.chunk_size, other.left_context_frames)}"
                )
        layers = tuple(
            LayerStreamingCache(*(torch.cat(parts, dim=0) for parts in zip(*(s.layers[i].tensors() for s in states))))
            for i in range(len(first.layers))
        )
        return replace(
            first,
            layers=layers,
            embed_left_context=torch.cat([s.embed_left_context for s in states]),
            processed_frames=torch.cat([s.processed_frames for s in states]),
        )

    def to_icefall_list(self) -> list[torch.Tensor]:
        """The authors' flat state list (`zipformer/streaming_decode.py` layout)."""
        flat = []
        for layer in self.layers:
            flat += [
                layer.key.transpose(0, 1),
                layer.nonlin_attention.unsqueeze(0),
                layer.value1.transpose(0, 1),
                layer.value2.transpose(0, 1),
                layer.conv1,
                layer.conv2,
            ]
        return flat + [self.embed_left_context, self.processed_frames]

    @classmethod
    def from_icefall_list(
        cls, states: list[torch.Tensor], chunk_size: int, left_context_frames: int
    ) -> "EncoderStreamingState":
        """Read the authors' flat state list (see `to_icefall_list`)."""
        if (len(states) - 2) % 6:
            raise ValueError(f"an icefall state list has 6 tensors per layer plus 2; got {len(states)} tensors")
        layers = tuple(
            LayerStreamingCache(
                key=states[i].transpose(0, 1),
                nonlin_attention=states[i + 1].squeeze(0),
                value1=states[i + 2].transpose(0, 1),
                value2=states[i + 3].transpose(0, 1),
                conv1=states[i + 4],
                conv2=states[i + 5],
            )
            for i in range(0, len(states) - 2, 6)
        )
        return cls(chunk_size, left_context_frames, layers, states[-2], states[-1].long())


def initial_streaming_state(
    config,
    batch_size: int,
    chunk_size: int,
    left_context_frames: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> EncoderStreamingState:
    """Zero caches for `batch_size` new streams of an encoder with `config`."""
    zeros = lambda *shape: torch.zeros(*shape, device=device, dtype=dtype)  # noqa: E731
    layers = []
    for stack in range(config.num_stacks):
        left = left_context_frames // config.downsampling_factor[stack]
        dim = config.encoder_dim[stack]
        heads = config.num_attention_heads[stack]
        conv_left = config.cnn_module_kernel[stack] // 2
        for _ in range(config.num_encoder_layers[stack]):
            layers.append(
                LayerStreamingCache(
                    key=zeros(batch_size, left, heads * config.query_head_dim[stack]),
                    nonlin_attention=zeros(batch_size, left, 3 * dim // 4),
                    value1=zeros(batch_size, left, heads * config.value_head_dim[stack]),
                    value2=zeros(batch_size, left, heads * config.value_head_dim[stack]),
                    conv1=zeros(batch_size, dim, conv_left),
                    conv2=zeros(batch_size, dim, conv_left),
                )
            )
    freqs = ((config.num_mel_bins - 1) // 2 - 1) // 2
    return EncoderStreamingState(
        chunk_size=chunk_size,
        left_context_frames=left_context_frames,
        layers=tuple(layers),
        embed_left_context=zeros(batch_size, config.subsampling_channels[2], 3, freqs),
        processed_frames=torch.zeros(batch_size, dtype=torch.long, device=device),
    )


def check_state_fits(state: EncoderStreamingState, config, batch_size: int) -> None:
    """Raise a clear error when `state` was not made for this model, these chunk settings or this batch."""
    if not isinstance(state, EncoderStreamingState):
        raise TypeError(
            f"expected an EncoderStreamingState from init_streaming_state(); got {type(state).__name__}"
        )
    if state.batch_size != batch_size:
        raise ValueError(
            f"the streaming state holds {state.batch_size} streams but the chunk has batch size {batch_size}; "
            "use one state per batch of streams (state.select() / EncoderStreamingState.concatenate() regroup them)"
        )
    expected = initial_streaming_state(config, 0, state.chunk_size, state.left_context_frames, device="meta")
    if len(state.layers) != len(expected.layers):
        raise ValueError(
            f"the streaming state has caches for {len(state.layers)} layers but this model has {len(expected.layers)}; "
            "it was made by another model: create it with this model's init_streaming_state()"
        )
    names = ("key", "nonlin_attention", "value1", "value2", "conv1", "conv2")
    for index, (layer, wanted) in enumerate(zip(state.layers, expected.layers)):
        for name, tensor, reference in zip(names, layer.tensors(), wanted.tensors()):
            if tuple(tensor.shape[1:]) != tuple(reference.shape[1:]) or tensor.shape[0] != batch_size:
                raise ValueError(
                    f"layer {index}'s {name} cache has shape {tuple(tensor.shape)} but this model needs "
                    f"{(batch_size, *reference.shape[1:])}; the state was made by another model or for other chunk "
                    "settings: create it with this model's init_streaming_state()"
                )
    if tuple(state.embed_left_context.shape[1:]) != tuple(expected.embed_left_context.shape[1:]):
        raise ValueError(
            f"the front-end cache has shape {tuple(state.embed_left_context.shape)} but this model needs "
            f"{(batch_size, *expected.embed_left_context.shape[1:])}; create the state with this model's "
            "init_streaming_state()"
        )
