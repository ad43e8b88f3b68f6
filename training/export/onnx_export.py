"""Export an MT2KD model folder to ONNX: one multi-head graph, the transducer's three graphs, and sherpa-onnx's files.

Written into the output folder (each head's files only when the model has the head):

| file | inputs → outputs | for |
|---|---|---|
| `model.onnx` | `input_features` (batch, frames, 80), `attention_mask` (batch, frames) → `last_hidden_state`, `output_lengths`, `output_attention_mask`, `transducer_encoder_out`, `ctc_log_probs`, `tagging_probs`, `speaker_embeddings` | onnxruntime, batch-first like the PyTorch model |
| `encoder.onnx`, `decoder.onnx`, `joiner.onnx`, `tokens.txt` | icefall's offline transducer interface | sherpa-onnx `OfflineRecognizer.from_transducer`, or your own search |
| `encoder-streaming.onnx` | `x` (N, 2·chunk_size + 13, 80) + cached states → `encoder_out` + new states (causal transducers only) | sherpa-onnx `OnlineRecognizer.from_transducer` with decoder / joiner / tokens above (`streaming_export.py`) |
| `ctc.onnx` (+ `tokens.txt`) | `x`, `x_lens` → `log_probs`, `log_probs_len` | sherpa-onnx `OfflineRecognizer.from_zipformer_ctc` |
| `tagging.onnx`, `tagging_labels.csv` | `x`, `x_lens` → `probs` | sherpa-onnx `AudioTagging` |
| `speaker.onnx` | `x` (1, frames, 80) → `embedding` | sherpa-onnx `SpeakerEmbeddingExtractor` |
| `export.json` | dtype, opset, exporter, versions, every file's inputs / outputs and its measured difference from PyTorch | |

The encoder is traced once (`torch.onnx.export(dynamo=True)`, i.e. `torch.export` with dynamic batch and frames);
every encoder file is that graph pruned to its outputs, so all of them compute exactly the same thing. Each file
holds its own copy of the encoder weights.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper

from configuration_mt2kd import MIN_INPUT_FRAMES

from . import sherpa_onnx_layout as sherpa
from .graph_editing import prune_to_outputs, replace_inputs, set_metadata
from .graphs import EncoderOutputs, MultiHeadEncoderGraph, TransducerDecoderGraph, TransducerJoinerGraph

__all__ = ["DTYPES", "MODEL_FILE", "OPSET", "REPORT_FILE", "ExportReport", "export_onnx", "load_model_for_export"]

OPSET = 18
DTYPES = ("fp32", "int8", "bf16")
MODEL_FILE = "model.onnx"
REPORT_FILE = "export.json"
EXPORTER = "torch.onnx.export(dynamo=True)"
# fp32 files must reproduce PyTorch; anything beyond this on the check batch is a broken graph, not rounding.
FP32_TOLERANCE = 1e-3


@dataclass
class ExportReport:
    """What `export_onnx` wrote: per file, its role, inputs, outputs and max |onnxruntime - PyTorch| per output on a
    check batch of two utterances (one padded)."""

    output_dir: Path
    dtype: str
    opset: int
    files: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        import onnxruntime

        return {
            "dtype": self.dtype,
            "opset": self.opset,
            "exporter": EXPORTER,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "files": self.files,
        }


def export_onnx(model_dir: str | Path, output_dir: str | Path, dtype: str = "fp32", opset: int = OPSET) -> ExportReport:
    """Export the model folder `model_dir` (saved by `save_pretrained`, with its tokenizer for ASR heads) into
    `output_dir` (see the module docstring for the files).

    Args:
        dtype: "fp32" (exact), "int8" (onnxruntime dynamic quantisation of MatMul / Gemm weights, activations
            quantised per call) or "bf16" (refused: onnxruntime's CPU provider cannot run it; see docs/export.md).
        opset: ONNX opset of the graphs.

    Raises:
        ValueError: an unknown or unsupported dtype, a folder that is not an MT2KD model, an ASR model without its
            tokenizer, or a graph that does not reproduce PyTorch.
    """
    check_dtype(dtype)
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    model = load_model_for_export(model_dir)
    config = model.config
    output_dir.mkdir(parents=True, exist_ok=True)
    pieces = _token_pieces(model_dir, config) if _has_asr_head(model) else None

    graphs, heads = _export_graphs(model, model_dir, opset)
    transducer = getattr(model, "transducer", None)

    report = ExportReport(output_dir=output_dir, dtype=dtype, opset=opset)
    for file_name, (graph, role, extra_metadata) in graphs.items():
        if dtype == "int8":
            graph = _quantize_int8(graph)
        set_metadata(graph, {**_common_metadata(config, role, dtype, _default_opset(graph)), **extra_metadata})
        onnx.save(graph, output_dir / file_name)
        report.files[file_name] = {
            "role": role,
            "inputs": [value.name for value in graph.graph.input],
            "outputs": [value.name for value in graph.graph.output],
        }
    if pieces is not None:
        sherpa.write_tokens(pieces, output_dir / sherpa.TOKENS_FILE)
    if EncoderOutputs.TAGGING in heads:
        sherpa.write_tagging_labels(config.id2label, output_dir / sherpa.TAGGING_LABELS_FILE)

    from .verification import compare_with_pytorch

    for file_name, differences in compare_with_pytorch(model, output_dir, report.files).items():
        report.files[file_name]["max_abs_difference"] = differences
        worst = max(differences.values(), default=0.0)
        if dtype == "fp32" and not worst <= FP32_TOLERANCE:
            raise ValueError(
                f"{file_name} does not reproduce PyTorch: max |onnxruntime - torch| = {worst:.3g} > {FP32_TOLERANCE} "
                f"({differences}); this is an exporter problem, please report it with the model folder's config.json"
            )
    if transducer is not None and config.causal:
        from .streaming_export import write_streaming_encoder

        report.files.update(write_streaming_encoder(model, output_dir, dtype, opset))
    (output_dir / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return report


def _export_graphs(
    model: torch.nn.Module, model_dir: Path, opset: int
) -> tuple[dict[str, tuple[onnx.ModelProto, str, dict]], set[str]]:
    """The graphs of `model`'s heads, `{file name: (graph, role, extra metadata)}`, and the multi-head graph's
    outputs (its heads)."""
    config = model.config
    encoder_graph = MultiHeadEncoderGraph(model).eval()
    full = _export_encoder(encoder_graph, config.num_mel_bins, opset)
    heads = set(encoder_graph.output_names)
    graphs: dict[str, tuple[onnx.ModelProto, str, dict]] = {MODEL_FILE: (_batch_first_model(full), "multi-head", {})}
    transducer = getattr(model, "transducer", None)
    if transducer is not None:
        encoder = prune_to_outputs(
            full, {EncoderOutputs.TRANSDUCER: "encoder_out", EncoderOutputs.LENGTHS: "encoder_out_lens"}
        )
        graphs[sherpa.ENCODER_FILE] = (encoder, "transducer-encoder", sherpa.encoder_metadata(config))
        decoder = _export_step(TransducerDecoderGraph(transducer), _decoder_example(config), opset)
        graphs[sherpa.DECODER_FILE] = (decoder, "transducer-decoder", sherpa.decoder_metadata(config))
        joiner = _export_step(TransducerJoinerGraph(transducer), _joiner_example(config), opset)
        graphs[sherpa.JOINER_FILE] = (joiner, "transducer-joiner", sherpa.joiner_metadata(config))
    if EncoderOutputs.CTC in heads:
        ctc = prune_to_outputs(full, {EncoderOutputs.CTC: "log_probs", EncoderOutputs.LENGTHS: "log_probs_len"})
        graphs[sherpa.CTC_FILE] = (ctc, "ctc", sherpa.ctc_metadata(config))
    if EncoderOutputs.TAGGING in heads:
        graphs[sherpa.TAGGING_FILE] = (prune_to_outputs(full, {EncoderOutputs.TAGGING: "probs"}), "tagging", {})
    if EncoderOutputs.SPEAKER in heads:
        speaker = _whole_utterance_input(prune_to_outputs(full, {EncoderOutputs.SPEAKER: "embedding"}))
        sample_rate = _sampling_rate(model_dir)
        graphs[sherpa.SPEAKER_FILE] = (speaker, "speaker", sherpa.speaker_metadata(config, sample_rate))
    return graphs, heads


def check_dtype(dtype: str) -> None:
    """Refuse dtypes this exporter does not write, and bf16 with the reason (see docs/export.md)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    if dtype == "bf16":
        import onnxruntime

        raise ValueError(
            f"--dtype bf16 is not exported: onnxruntime {onnxruntime.__version__}'s CPU execution provider has no "
            "bfloat16 kernels for MatMul, Tanh, Sigmoid or Softmax, and ONNX Conv accepts bfloat16 only from opset "
            "22, so a bf16 graph would not run on CPU. Use --dtype fp32 (exact) or --dtype int8 (smaller, runs on "
            "CPU); for bfloat16 on CPU run the PyTorch model in bfloat16 (model.to(torch.bfloat16))"
        )


def load_model_for_export(model_dir: Path) -> torch.nn.Module:
    """The folder's model, as the class its config names (`architectures`), in eval mode on CPU in float32."""
    import modeling_mt2kd
    from configuration_mt2kd import MT2KDConfig

    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir} has no config.json; pass a folder written by save_pretrained")
    config = MT2KDConfig.from_pretrained(model_dir)
    architecture = (config.architectures or ["MT2KDForMultiTask"])[0]
    model_class = getattr(modeling_mt2kd, architecture, None)
    if model_class is None or not isinstance(model_class, type) or not issubclass(model_class, torch.nn.Module):
        raise ValueError(f"{model_dir}/config.json names architecture {architecture!r}, which is not an MT2KD model")
    return model_class.from_pretrained(model_dir).float().eval()


def _has_asr_head(model: torch.nn.Module) -> bool:
    return getattr(model, "transducer", None) is not None or getattr(model, "ctc_head", None) is not None


def _token_pieces(model_dir: Path, config) -> list[str]:
    """The tokenizer's piece of every token id, for tokens.txt."""
    from processing_mt2kd import MT2KDTokenizer

    try:
        tokenizer = MT2KDTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise ValueError(
            f"{model_dir} has an ASR head but no loadable tokenizer ({error}); save the tokenizer into the folder "
            "(processor.save_pretrained(folder)) so tokens.txt can be written"
        ) from error
    if len(tokenizer) != config.vocab_size:
        raise ValueError(
            f"the tokenizer in {model_dir} has {len(tokenizer)} tokens but the model's vocab_size is "
            f"{config.vocab_size}; export the folder the model was trained with"
        )
    return tokenizer.convert_ids_to_tokens(list(range(config.vocab_size)))


def _sampling_rate(model_dir: Path) -> int:
    from processing_mt2kd import MT2KDFeatureExtractor

    if (model_dir / "preprocessor_config.json").is_file():
        return int(MT2KDFeatureExtractor.from_pretrained(model_dir).sampling_rate)
    return int(MT2KDFeatureExtractor().sampling_rate)


def _common_metadata(config, role: str, dtype: str, opset: int) -> dict[str, object]:
    return {
        "model_author": "MT2KD",
        "comment": "exported by training_mt2kd.export (mt2kd export-onnx)",
        "version": "1",
        "mt2kd_graph": role,
        "mt2kd_dtype": dtype,
        "mt2kd_opset": opset,
        "mt2kd_exporter": f"{EXPORTER}, torch {torch.__version__}",
        "feature_dim": config.num_mel_bins,
        "frame_shift_ms": 10,
        "output_frame_rate_hz": 25,
    }


def _default_opset(graph: onnx.ModelProto) -> int:
    """The graph's ONNX (default domain) opset, as written (the exporter may raise a lower request)."""
    return next(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx"))


def _export_encoder(graph: MultiHeadEncoderGraph, num_mel_bins: int, opset: int) -> onnx.ModelProto:
    batch = torch.export.Dim("batch")
    # The graph's shortest input is the model's, MIN_INPUT_FRAMES (one output frame): the ONNX graph reproduces PyTorch
    # from there (tests/test_export_onnx.py), unlike a torch.export program, which starts at
    # modeling_mt2kd.graph_capture.min_graph_frames.
    frames = torch.export.Dim("frames", min=MIN_INPUT_FRAMES)
    example = (torch.randn(2, 200, num_mel_bins), torch.tensor([200, 150]))
    return _to_onnx(
        graph, example, ["x", "x_lens"], graph.output_names, {"x": {0: batch, 1: frames}, "x_lens": {0: batch}}, opset
    )


def _export_step(graph: torch.nn.Module, example: tuple[torch.Tensor, ...], opset: int) -> onnx.ModelProto:
    batch = torch.export.Dim("batch")
    dynamic = {name: {0: batch} for name in graph.input_names}
    return _to_onnx(graph.eval(), example, graph.input_names, graph.output_names, dynamic, opset)


def _to_onnx(module, example, input_names, output_names, dynamic_shapes, opset) -> onnx.ModelProto:
    with torch.no_grad():
        program = torch.onnx.export(
            module, example, dynamo=True, input_names=input_names, output_names=output_names,
            dynamic_shapes=dynamic_shapes, opset_version=opset, external_data=False, verbose=False,
        )
    return program.model_proto


def _decoder_example(config) -> tuple[torch.Tensor]:
    context = torch.full((2, config.context_size), config.blank_id, dtype=torch.long)
    context[0, :-1] = -1  # the start context: no token, then the blank
    context[1, -1] = min(1, config.vocab_size - 1)
    return (context,)


def _joiner_example(config) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(2, config.joiner_dim), torch.randn(2, config.joiner_dim)


def _batch_first_model(full: onnx.ModelProto) -> onnx.ModelProto:
    """`model.onnx`: the multi-head graph with `input_features` and a (batch, frames) `attention_mask` in front."""
    features = helper.make_tensor_value_info("input_features", TensorProto.FLOAT, ["batch", "frames", None])
    _copy_last_dim(full, "x", features)
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "frames"])
    nodes = [
        helper.make_node("Identity", ["input_features"], ["x"], name="features_to_x"),
        helper.make_node("Cast", ["attention_mask"], ["attention_mask_int64"], to=TensorProto.INT64, name="mask_cast"),
        helper.make_node("Constant", [], ["sum_axes"], value=helper.make_tensor("axes", TensorProto.INT64, [1], [1])),
        helper.make_node("ReduceSum", ["attention_mask_int64", "sum_axes"], ["x_lens"], keepdims=0, name="mask_to_lens"),
    ]
    return replace_inputs(full, [features, mask], nodes, ["x", "x_lens"])


def _whole_utterance_input(graph: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with `x_lens` computed as every frame of `x` (sherpa-onnx's speaker models take `x` alone)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"], name="x_shape"),
        helper.make_node("Constant", [], ["axis_0"], value=helper.make_tensor("i0", TensorProto.INT64, [1], [0])),
        helper.make_node("Constant", [], ["axis_1"], value=helper.make_tensor("i1", TensorProto.INT64, [1], [1])),
        helper.make_node("Constant", [], ["axis_2"], value=helper.make_tensor("i2", TensorProto.INT64, [1], [2])),
        helper.make_node("Slice", ["x_shape", "axis_0", "axis_1"], ["x_batch"], name="x_batch"),
        helper.make_node("Slice", ["x_shape", "axis_1", "axis_2"], ["x_frames"], name="x_frames"),
        helper.make_node("Expand", ["x_frames", "x_batch"], ["x_lens"], name="all_frames_valid"),
    ]
    return replace_inputs(graph, [], nodes, ["x_lens"])


def _copy_last_dim(full: onnx.ModelProto, name: str, target: onnx.ValueInfoProto) -> None:
    source = next(value for value in full.graph.input if value.name == name)
    source_dims = source.type.tensor_type.shape.dim
    target.type.tensor_type.shape.dim[-1].CopyFrom(source_dims[-1])


def _quantize_int8(graph: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime dynamic quantisation: int8 MatMul / Gemm weights, activations quantised at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save(graph, source)
        quantize_dynamic(source, target, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
        return onnx.load(target)

