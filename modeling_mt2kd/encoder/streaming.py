"""True streaming through a causal Zipformer2: one chunk of fbank frames at a time, with cached state.

Each function here is the streaming path of one encoder module, reusing that module's weights and
sub-modules; it computes what the module's full forward computes in eval mode with the chunk
attention mask, for the frames of one chunk (the authors' `streaming_forward` methods). Eval only:
the training-time regularisers are not replayed.

A call consumes `chunk_input_frames(chunk_size)` = 2 * chunk_size + 13 fbank frames and the caller
then advances by 2 * chunk_size: 7 frames of Conv2dSubsampling context and 2 * 3 frames that give
the ConvNeXt its 3 frames of right context (look-ahead) are read again by the next chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers.utils import ModelOutput

from ..lengths import downsampled_lengths, subsampled_lengths
from ..masks import lengths_to_mask
from .activations import swoosh_r
from .attention import MASKED_SCORE, NonlinAttention, RelPositionAttentionWeights, SelfAttention, compact_relative_positions
from .convolution import ConvolutionModule
from .layer import Zipformer2Layer
from .resampling import upsample
from .stack import Zipformer2Stack
from .streaming_state import EncoderStreamingState, LayerStreamingCache, check_state_fits, initial_streaming_state
from .subsampling import Conv2dSubsampling

SUBSAMPLING_CONTEXT = 7  # fbank frames Conv2dSubsampling consumes beyond 2 per output frame
CONVNEXT_LOOKAHEAD = 3  # 50 Hz frames of right context of the front end's ConvNeXt
LOOKAHEAD_FBANK_FRAMES = SUBSAMPLING_CONTEXT + 2 * CONVNEXT_LOOKAHEAD  # 13
LOG_EPS = math.log(1e-10)  # the value of padded fbank frames, as the authors' streaming decoder uses


def chunk_input_frames(chunk_size: int) -> int:
    """fbank frames (100 Hz) fed per call for a chunk of `chunk_size` 50 Hz frames."""
    return 2 * chunk_size + LOOKAHEAD_FBANK_FRAMES


def embed_streaming_forward(
    embed: Conv2dSubsampling, features: torch.Tensor, left_context: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """features (batch, 2·chunk + 13, mel) → (hidden (batch, chunk, out_channels), new ConvNeXt left context)."""
    hidden = features.unsqueeze(1)
    for conv in (embed.conv1, embed.conv2, embed.conv3):
        hidden = embed.activation(conv(hidden))  # (batch, channels, chunk + 3, freqs)
    convnext = embed.convnext
    kept = hidden.shape[2] - CONVNEXT_LOOKAHEAD
    extended = torch.cat([left_context, hidden], dim=2)
    new_left_context = extended[:, :, kept : kept + CONVNEXT_LOOKAHEAD]
    depthwise = convnext.depthwise_conv
    mixed = F.conv2d(extended, depthwise.weight, depthwise.bias, padding=(0, depthwise.padding[1]), groups=depthwise.groups)
    mixed = convnext.pointwise_conv2(convnext.activation(convnext.pointwise_conv1(mixed)))
    hidden = hidden[:, :, :kept] + mixed
    batch_size, channels, frames, freqs = hidden.shape
    hidden = hidden.transpose(1, 2).reshape(batch_size, frames, channels * freqs)
    return embed.out_norm(embed.out_proj(hidden)), new_left_context


def streaming_relative_positions(num_frames: int, left_frames: int, pos_dim: int, device: torch.device) -> torch.Tensor:
    """Encodings of offsets -(left + T - 1) … (T - 1): (left + 2T - 1, pos_dim)."""
    return compact_relative_positions(num_frames + left_frames, pos_dim, device)[: left_frames + 2 * num_frames - 1]


def _relative_to_absolute(pos_scores: torch.Tensor, num_keys: int) -> torch.Tensor:
    """(…, T, left + 2T - 1) scores by offset → (…, T, left + T) with out[i, j] = pos_scores[i, T - 1 - i + j]."""
    num_frames = pos_scores.shape[-2]
    index = (num_frames - 1 - torch.arange(num_frames, device=pos_scores.device)).unsqueeze(1)
    index = index + torch.arange(num_keys, device=pos_scores.device).unsqueeze(0)
    return pos_scores.gather(-1, index.expand(*pos_scores.shape[:-1], num_keys))


def attention_weights_streaming(
    module: RelPositionAttentionWeights,
    hidden: torch.Tensor,
    pos_emb: torch.Tensor,
    cached_key: torch.Tensor,
    key_padding_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (batch, T, dim), cached_key (batch, left, heads·query_head_dim), key_padding_mask
    (batch, left + T) → (weights (batch, heads, T, left + T), new cached_key)."""
    batch_size, num_frames, _ = hidden.shape
    heads, query_dim = module.num_heads, module.query_head_dim * module.num_heads
    projected = module.in_proj(hidden)
    query = projected[..., :query_dim].reshape(batch_size, num_frames, heads, -1).transpose(1, 2)
    keys = torch.cat([cached_key, projected[..., query_dim : 2 * query_dim]], dim=1)
    num_keys = keys.shape[1]
    new_cached_key = keys[:, num_frames:]
    scores = torch.matmul(query, keys.reshape(batch_size, num_keys, heads, -1).permute(0, 2, 3, 1))
    pos_query = projected[..., 2 * query_dim :].reshape(batch_size, num_frames, heads, -1).transpose(1, 2)
    pos_keys = module.linear_pos(pos_emb).reshape(-1, heads, module.pos_head_dim).permute(1, 2, 0)
    pos_scores = torch.matmul(pos_query, pos_keys.unsqueeze(0))  # (batch, heads, T, left + 2T - 1)
    scores = scores + _relative_to_absolute(pos_scores, num_keys)
    scores = scores.masked_fill(key_padding_mask[:, None, None, :], MASKED_SCORE)
    return scores.softmax(dim=-1), new_cached_key


def self_attention_streaming(
    module: SelfAttention, hidden: torch.Tensor, attn_weights: torch.Tensor, cached_values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (batch, T, dim), attn_weights (batch, heads, T, left + T), cached_values (batch, left, heads·value_head_dim)."""
    batch_size, num_frames, _ = hidden.shape
    heads = attn_weights.shape[1]
    values = torch.cat([cached_values, module.in_proj(hidden)], dim=1)
    new_cached_values = values[:, num_frames:]
    values = values.reshape(batch_size, values.shape[1], heads, -1).transpose(1, 2)
    mixed = torch.matmul(attn_weights, values).transpose(1, 2).reshape(batch_size, num_frames, -1)
    return module.out_proj(mixed), new_cached_values


def nonlin_attention_streaming(
    module: NonlinAttention, hidden: torch.Tensor, attn_weights: torch.Tensor, cached_values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (batch, T, dim), attn_weights (batch, heads, T, left + T) (head 0 is used),
    cached_values (batch, left, hidden_channels)."""
    num_frames = hidden.shape[1]
    gate, values, out_gate = module.in_proj(hidden).chunk(3, dim=-1)
    values = torch.cat([cached_values, values * torch.tanh(gate)], dim=1)
    mixed = torch.matmul(attn_weights[:, 0], values)
    return module.out_proj(mixed * out_gate), values[:, num_frames:]


def convolution_streaming(
    module: ConvolutionModule, hidden: torch.Tensor, cache: torch.Tensor, padding_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (batch, T, dim), cache (batch, dim, kernel // 2), padding_mask (batch, T) True on padding."""
    values, gate = module.in_proj(hidden).chunk(2, dim=-1)
    values = (values * torch.sigmoid(gate)).masked_fill(padding_mask.unsqueeze(-1), 0.0)
    convolved, new_cache = module.depthwise_conv.streaming_forward(values, cache)
    return module.out_proj(swoosh_r(convolved)), new_cache


def layer_streaming_forward(
    layer: Zipformer2Layer,
    hidden: torch.Tensor,
    pos_emb: torch.Tensor,
    cache: LayerStreamingCache,
    key_padding_mask: torch.Tensor,
) -> tuple[torch.Tensor, LayerStreamingCache]:
    """One layer on one chunk: hidden (batch, T, dim), key_padding_mask (batch, left + T)."""
    chunk_padding_mask = key_padding_mask[:, key_padding_mask.shape[1] - hidden.shape[1] :]
    layer_input = hidden
    attn_weights, key = attention_weights_streaming(layer.self_attn_weights, hidden, pos_emb, cache.key, key_padding_mask)
    hidden = hidden + layer.feed_forward1(hidden)
    nonlin, nonlin_values = nonlin_attention_streaming(layer.nonlin_attention, hidden, attn_weights, cache.nonlin_attention)
    hidden = hidden + nonlin
    attended, value1 = self_attention_streaming(layer.self_attn1, hidden, attn_weights, cache.value1)
    hidden = hidden + attended
    convolved, conv1 = convolution_streaming(layer.conv_module1, hidden, cache.conv1, chunk_padding_mask)
    hidden = hidden + convolved
    hidden = hidden + layer.feed_forward2(hidden)
    hidden = layer.bypass_mid(layer_input, hidden)
    attended, value2 = self_attention_streaming(layer.self_attn2, hidden, attn_weights, cache.value2)
    hidden = hidden + attended
    convolved, conv2 = convolution_streaming(layer.conv_module2, hidden, cache.conv2, chunk_padding_mask)
    hidden = hidden + convolved
    hidden = hidden + layer.feed_forward3(hidden)
    hidden = layer.bypass(layer_input, layer.norm(hidden))
    return hidden, LayerStreamingCache(key, nonlin_values, value1, value2, conv1, conv2)


def stack_streaming_forward(
    stack: Zipformer2Stack,
    hidden: torch.Tensor,
    caches: tuple[LayerStreamingCache, ...],
    left_context_frames: int,
    key_padding_mask: torch.Tensor,
) -> tuple[torch.Tensor, list[LayerStreamingCache]]:
    """hidden (batch, chunk, dim) at 50 Hz; key_padding_mask (batch, left_context_frames + chunk) at 50 Hz."""
    factor = stack.downsampling_factor
    stack_input = hidden
    if stack.downsample is not None:
        hidden = stack.downsample(hidden, None)
    key_padding_mask = key_padding_mask[:, ::factor]
    pos_emb = streaming_relative_positions(hidden.shape[1], left_context_frames // factor, stack.pos_dim, hidden.device)
    pos_emb = pos_emb.to(hidden.dtype)
    new_caches = []
    for layer, cache in zip(stack.layers, caches):
        hidden, cache = layer_streaming_forward(layer, hidden, pos_emb, cache, key_padding_mask)
        new_caches.append(cache)
    if stack.downsample is None:
        return hidden, new_caches
    hidden = upsample(hidden, factor, stack_input.shape[1])
    return stack.out_combiner(stack_input, hidden), new_caches


def encoder_streaming_forward(
    encoder, features: torch.Tensor, feature_lengths: torch.Tensor, state: EncoderStreamingState
) -> tuple[torch.Tensor, torch.Tensor, EncoderStreamingState]:
    """One chunk through the whole encoder.

    Args:
        encoder: a causal `Zipformer2Encoder` in eval mode.
        features: (batch, 2·chunk_size + 13, mel) fbank at 100 Hz.
        feature_lengths: (batch,) valid frames of `features` (frames past them are masked, as the
            authors' batched decoder does for streams that end).
        state: the state after the previous chunk.

    Returns:
        (encoder_out (batch, chunk_size / 2, hidden) at 25 Hz, its valid lengths (batch,), new state).
    """
    from .zipformer import convert_num_channels  # the module imports this file's neighbours

    chunk_size, left_frames = state.chunk_size, state.left_context_frames
    hidden, embed_left_context = embed_streaming_forward(encoder.embed, features, state.embed_left_context)
    lengths = subsampled_lengths(feature_lengths) - CONVNEXT_LOOKAHEAD
    # Cache slot j holds the frame `left_frames - j` frames back; slots never filled are masked.
    slots = torch.arange(left_frames, device=hidden.device)
    never_filled = slots.unsqueeze(0) < (left_frames - state.processed_frames).unsqueeze(1)
    chunk_padding = ~lengths_to_mask(lengths.clamp(min=0), hidden.shape[1])
    key_padding_mask = torch.cat([never_filled, chunk_padding], dim=1)

    outputs, new_layers, offset = [], [], 0
    for stack, dim in zip(encoder.stacks, encoder.encoder_dim):
        caches = state.layers[offset : offset + len(stack.layers)]
        offset += len(stack.layers)
        hidden, caches = stack_streaming_forward(stack, convert_num_channels(hidden, dim), caches, left_frames, key_padding_mask)
        outputs.append(hidden)
        new_layers += caches
    combined = encoder._combine_stacks(outputs)
    encoder_out = encoder.output_downsample(combined, None)
    factor = encoder.output_downsampling_factor
    out_lengths = downsampled_lengths(lengths, factor).clamp(min=0)
    new_state = replace(
        state,
        layers=tuple(new_layers),
        embed_left_context=embed_left_context,
        processed_frames=state.processed_frames + lengths,
    )
    return encoder_out, out_lengths, new_state


def new_streaming_state(
    config,
    batch_size: int = 1,
    chunk_size: int | None = None,
    left_context_frames: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> EncoderStreamingState:
    """A zero state for `batch_size` new streams, with checked chunk settings (default: the config's)."""
    if not config.causal:
        raise ValueError(
            "streaming needs a causal model (config.causal=True, e.g. a converted `--causal 1` checkpoint); this "
            "model sees the whole utterance: use forward(), or the chunked (non-streaming) pipelines"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of streams; got {batch_size!r}")
    chunk_size = config.chunk_size if chunk_size is None else chunk_size
    left_context_frames = config.left_context_frames if left_context_frames is None else left_context_frames
    multiple = math.lcm(*config.downsampling_factor, config.output_downsampling_factor)
    if not isinstance(chunk_size, int) or chunk_size <= 0 or chunk_size % multiple:
        raise ValueError(
            f"streaming chunk_size must be a positive multiple of {multiple} frames at 50 Hz (the stacks' and the "
            f"output's downsampling factors), e.g. 16 (320 ms); got {chunk_size!r}"
        )
    if not isinstance(left_context_frames, int) or left_context_frames <= 0 or left_context_frames % multiple:
        raise ValueError(
            f"streaming left_context_frames must be a positive multiple of {multiple} frames at 50 Hz, e.g. 128; got "
            f"{left_context_frames!r} (-1, unlimited, exists only for the full forward)"
        )
    return initial_streaming_state(config, batch_size, chunk_size, left_context_frames, device, dtype)


def run_streaming_chunk(
    encoder,
    features: torch.Tensor,
    state: EncoderStreamingState,
    feature_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, EncoderStreamingState]:
    """Checked entry point for one chunk (see `encoder_streaming_forward`).

    A chunk shorter than `chunk_input_frames(state.chunk_size)` (the end of a stream) is padded with
    LOG_EPS frames that count as valid, as the authors' decoder does; a longer one is an error.
    """
    config = encoder.config
    if encoder.training:
        raise RuntimeError("streaming_forward runs in eval mode (the regularisers are not streamed); call model.eval()")
    if not isinstance(features, torch.Tensor) or features.ndim != 3 or features.shape[-1] != config.num_mel_bins:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"expected a feature chunk of shape (batch, frames, {config.num_mel_bins}); got {shape}")
    needed = chunk_input_frames(state.chunk_size)
    batch_size, num_frames, _ = features.shape
    if num_frames == 0:
        raise ValueError(
            f"empty feature chunk; each call takes up to {needed} fbank frames (2 * chunk_size + 13) and the next "
            f"call starts {2 * state.chunk_size} frames later"
        )
    if num_frames > needed:
        raise ValueError(
            f"a chunk holds at most {needed} fbank frames for chunk_size={state.chunk_size} (2 * chunk_size + 13 "
            f"look-ahead); got {num_frames}. Feed frames [k * {2 * state.chunk_size}, k * {2 * state.chunk_size} + "
            f"{needed}) at call k, or use StreamingRecognizer, which buffers features for you"
        )
    check_state_fits(state, config, batch_size)
    if feature_lengths is None:
        feature_lengths = torch.full((batch_size,), num_frames, device=features.device)
    feature_lengths = feature_lengths.to(features.device)
    if num_frames < needed:
        features = F.pad(features, (0, 0, 0, needed - num_frames), value=LOG_EPS)
        feature_lengths = feature_lengths + (needed - num_frames)
    return encoder_streaming_forward(encoder, features, feature_lengths, state)


@dataclass
class StreamingEncoderOutput(ModelOutput):
    """
    Args:
        last_hidden_state: (batch, chunk_size / 2, hidden) this chunk's encoder output at 25 Hz.
        attention_mask: (batch, chunk_size / 2) 1 on valid output frames (all of them, except in the
            last chunks of streams that ended while batched with longer ones).
        state: the state to pass with the next chunk.
    """

    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    state: EncoderStreamingState | None = None
