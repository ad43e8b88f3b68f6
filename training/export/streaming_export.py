"""The streaming encoder of a causal transducer model, as sherpa-onnx's online (streaming) Zipformer2 recognizer
loads it (`OnlineRecognizer.from_transducer` with `encoder-streaming.onnx`, `decoder.onnx`, `joiner.onnx`,
`tokens.txt`).

sherpa-onnx 2.0.1 (`sherpa-onnx/csrc/online-zipformer2-transducer-model.cc`, `online-recognizer-transducer-impl.h`)
feeds the encoder by position:

- input 0 `x`: (N, T, 80) fbank, T = `decode_chunk_len` + 13 frames; after each call the stream advances by
  `decode_chunk_len` = 2 * chunk_size frames. A chunk is decoded only while `processed + T < frames ready`, so the
  frames of a last, incomplete chunk are never decoded (pad the audio with silence to flush a stream).
- inputs 1…: the cached state in the authors' flat list (`EncoderStreamingState.to_icefall_list`): per Zipformer
  layer `cached_key_i` (left_i, N, heads·query_head_dim), `cached_nonlin_attn_i` (1, N, left_i, 3·dim/4),
  `cached_val1_i`, `cached_val2_i` (left_i, N, heads·value_head_dim), `cached_conv1_i`, `cached_conv2_i`
  (N, dim, kernel // 2); then `embed_states` (N, 128, 3, 19) and `processed_lens` (N,) int64.
- outputs: `encoder_out` (N, chunk_size / 2, joiner_dim), already projected by the joiner's encoder projection,
  then the new states (`new_<name>`) in the same order.
- metadata: `model_type` "zipformer2", `decode_chunk_len`, `T`, and comma-separated per-stack lists
  `num_encoder_layers`, `encoder_dims`, `cnn_module_kernels`, `left_context_len` (left_context_frames divided by
  each stack's downsampling factor), `query_head_dims`, `value_head_dims`, `num_heads`; sherpa-onnx builds the zero
  initial state from them (with 128 front-end channels hard-coded).

Our model keeps its batch-first `EncoderStreamingState`; `StreamingEncoderGraph` converts at the graph boundary.
"""

from __future__ import annotations

import onnx
import torch
from torch import nn

from modeling_mt2kd.encoder.streaming import LOOKAHEAD_FBANK_FRAMES, chunk_input_frames, encoder_streaming_forward
from modeling_mt2kd.encoder.streaming_state import EncoderStreamingState

__all__ = [
    "STREAMING_ENCODER_FILE",
    "SHERPA_EMBED_CHANNELS",
    "StreamingEncoderGraph",
    "check_streaming_exportable",
    "compare_streaming_with_pytorch",
    "export_streaming_encoder",
    "streaming_encoder_metadata",
    "streaming_state_names",
    "write_streaming_encoder",
]

STREAMING_ENCODER_FILE = "encoder-streaming.onnx"
ROLE = "transducer-streaming-encoder"  # `mt2kd_graph` metadata and export.json role
SHERPA_EMBED_CHANNELS = 128  # sherpa-onnx's initial front-end cache has 128 channels, whatever the model
LAYER_STATE_NAMES = ("cached_key", "cached_nonlin_attn", "cached_val1", "cached_val2", "cached_conv1", "cached_conv2")
# Axis of the batch in each layer state (time-major attention caches, batch-first convolution caches).
LAYER_STATE_BATCH_AXES = (1, 1, 1, 1, 0, 0)
CHECK_CHUNKS = 4  # chunks of random features run through onnxruntime and PyTorch after export


def streaming_state_names(config) -> list[str]:
    """Input names of the state tensors, in sherpa-onnx's order (the outputs are `new_` + each name)."""
    names = []
    for layer in range(sum(config.num_encoder_layers)):
        names += [f"{name}_{layer}" for name in LAYER_STATE_NAMES]
    return names + ["embed_states", "processed_lens"]


def _state_batch_axes(config) -> list[int]:
    return list(LAYER_STATE_BATCH_AXES) * sum(config.num_encoder_layers) + [0, 0]


def check_streaming_exportable(model: nn.Module) -> None:
    """Raise a ValueError when sherpa-onnx's online Zipformer2 recognizer could not run this model's stream."""
    config = model.config
    if getattr(model, "transducer", None) is None:
        raise ValueError(
            f"{type(model).__name__} has no transducer head; sherpa-onnx's online recognizer streams transducers only"
        )
    if config.subsampling_channels[2] != SHERPA_EMBED_CHANNELS:
        raise ValueError(
            f"sherpa-onnx creates the streaming front-end cache with {SHERPA_EMBED_CHANNELS} channels, but this "
            f"model's subsampling_channels[2] is {config.subsampling_channels[2]}; only models with "
            f"{SHERPA_EMBED_CHANNELS} can be streamed by sherpa-onnx (use the offline encoder.onnx, or our own "
            "streaming pipeline)"
        )


def streaming_encoder_metadata(config, chunk_size: int, left_context_frames: int) -> dict[str, object]:
    """What sherpa-onnx reads from the streaming encoder (see the module docstring)."""
    per_stack = lambda values: ",".join(str(int(v)) for v in values)  # noqa: E731
    return {
        "model_type": "zipformer2",
        "decode_chunk_len": 2 * chunk_size,
        "T": chunk_input_frames(chunk_size),
        "num_encoder_layers": per_stack(config.num_encoder_layers),
        "encoder_dims": per_stack(config.encoder_dim),
        "cnn_module_kernels": per_stack(config.cnn_module_kernel),
        "left_context_len": per_stack(left_context_frames // factor for factor in config.downsampling_factor),
        "query_head_dims": per_stack(config.query_head_dim),
        "value_head_dims": per_stack(config.value_head_dim),
        "num_heads": per_stack(config.num_attention_heads),
        "chunk_size": chunk_size,
        "left_context_frames": left_context_frames,
        "vocab_size": config.vocab_size,
    }


class StreamingEncoderGraph(nn.Module):
    """One streaming chunk in sherpa-onnx's interface: `x` (N, 2·chunk_size + 13, 80) and the flat time-major state
    list → `encoder_out` (N, chunk_size / 2, joiner_dim) projected for the joiner, and the new state list.

    Every frame of `x` is valid (sherpa-onnx feeds only complete chunks)."""

    def __init__(self, model: nn.Module, chunk_size: int, left_context_frames: int):
        super().__init__()
        self.encoder = model.mt2kd.encoder
        self.encoder_proj = model.transducer.joiner.encoder_proj
        self.chunk_size = chunk_size
        self.left_context_frames = left_context_frames

    def forward(self, x: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        state = EncoderStreamingState.from_icefall_list(list(states), self.chunk_size, self.left_context_frames)
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        encoder_out, _, new_state = encoder_streaming_forward(self.encoder, x, lengths, state)
        return (self.encoder_proj(encoder_out), *new_state.to_icefall_list())


def _initial_icefall_state(model: nn.Module, batch_size: int, chunk_size: int, left_context_frames: int):
    return model.mt2kd.init_streaming_state(batch_size, chunk_size, left_context_frames).to_icefall_list()


def export_streaming_encoder(model: nn.Module, opset: int) -> onnx.ModelProto:
    """The model's streaming encoder (config chunk_size / left_context_frames) traced with dynamic batch; no
    metadata (the caller sets it)."""
    from .onnx_export import _to_onnx

    check_streaming_exportable(model)
    config = model.config
    chunk_size, left_context_frames = config.chunk_size, config.left_context_frames
    graph = StreamingEncoderGraph(model, chunk_size, left_context_frames).eval()
    batch = torch.export.Dim("batch")
    states = _initial_icefall_state(model, 2, chunk_size, left_context_frames)
    example = (torch.randn(2, chunk_input_frames(chunk_size), config.num_mel_bins), states)
    dynamic = ({0: batch}, [{axis: batch} for axis in _state_batch_axes(config)])
    state_names = streaming_state_names(config)
    input_names = ["x", *state_names]
    output_names = ["encoder_out", *(f"new_{name}" for name in state_names)]
    return _to_onnx(graph, example, input_names, output_names, dynamic, opset)


def compare_streaming_with_pytorch(model: nn.Module, path) -> dict[str, float]:
    """Run `CHECK_CHUNKS` chunks of random features for two streams through the file at `path` (onnxruntime, its
    own states fed back) and through `MT2KDModel.streaming_forward` + the joiner's encoder projection; returns
    {"encoder_out": max |difference| over all chunks, "states": max |difference| of the states after the last}."""
    import onnxruntime

    from .verification import max_abs_difference

    config = model.config
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_names = [value.name for value in session.get_inputs()]
    generator = torch.Generator().manual_seed(0)
    frames = 2 * config.chunk_size * CHECK_CHUNKS + LOOKAHEAD_FBANK_FRAMES
    features = torch.randn(2, frames, config.num_mel_bins, generator=generator)
    state = model.mt2kd.init_streaming_state(2)
    onnx_states = [tensor.numpy() for tensor in state.to_icefall_list()]
    worst_out = 0.0
    for chunk in range(CHECK_CHUNKS):
        start = 2 * config.chunk_size * chunk
        x = features[:, start : start + chunk_input_frames(config.chunk_size)]
        with torch.no_grad():
            output = model.mt2kd.streaming_forward(x, state)
            expected = model.transducer.joiner.encoder_proj(output.last_hidden_state)
        state = output.state
        values = session.run(None, dict(zip(input_names, [x.numpy(), *onnx_states])))
        worst_out = max(worst_out, max_abs_difference(values[0], expected))
        onnx_states = values[1:]
    state_differences = [
        max_abs_difference(value, reference) for value, reference in zip(onnx_states, state.to_icefall_list())
    ]
    if len(onnx_states) != len(state_differences):
        state_differences.append(float("inf"))
    return {"encoder_out": worst_out, "states": max(state_differences, default=0.0)}


def write_streaming_encoder(model: nn.Module, output_dir, dtype: str, opset: int) -> dict[str, dict]:
    """Write `encoder-streaming.onnx` for a causal transducer model into `output_dir` and check it against PyTorch;
    returns its `export.json` entry ({file: role, inputs, outputs, max_abs_difference}).

    A model sherpa-onnx could not stream (see `check_streaming_exportable`) gets no file and a warning saying why;
    the offline files are still usable.

    Raises:
        ValueError: an fp32 graph that does not reproduce `streaming_forward`.
    """
    import warnings
    from pathlib import Path

    from .graph_editing import set_metadata
    from .onnx_export import FP32_TOLERANCE, _common_metadata, _default_opset, _quantize_int8

    config = model.config
    try:
        check_streaming_exportable(model)
    except ValueError as reason:
        warnings.warn(f"{STREAMING_ENCODER_FILE} not written: {reason}", stacklevel=2)
        return {}
    graph = export_streaming_encoder(model, opset)
    if dtype == "int8":
        graph = _quantize_int8(graph)
    metadata = streaming_encoder_metadata(config, config.chunk_size, config.left_context_frames)
    common = _common_metadata(config, ROLE, dtype, _default_opset(graph))
    set_metadata(graph, {**common, **metadata})
    path = Path(output_dir) / STREAMING_ENCODER_FILE
    onnx.save(graph, path)
    differences = compare_streaming_with_pytorch(model, path)
    worst = max(differences.values())
    if dtype == "fp32" and not worst <= FP32_TOLERANCE:
        raise ValueError(
            f"{STREAMING_ENCODER_FILE} does not reproduce streaming_forward: max |onnxruntime - torch| = {worst:.3g} > "
            f"{FP32_TOLERANCE} ({differences}); this is an exporter problem, please report it with the model "
            "folder's config.json"
        )
    entry = {
        "role": ROLE,
        "inputs": [value.name for value in graph.graph.input],
        "outputs": [value.name for value in graph.graph.output],
        "max_abs_difference": differences,
    }
    return {STREAMING_ENCODER_FILE: entry}
