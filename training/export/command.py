"""`mt2kd export-onnx`: write a model folder's ONNX graphs and sherpa-onnx files (see `onnx_export.py`)."""

from __future__ import annotations

import argparse
import json

from training_mt2kd.cli.commands.command import Command

__all__ = ["COMMAND"]

DESCRIPTION = """Export an MT2KD model folder to ONNX.

Writes model.onnx (encoder + every head, batch-first input_features / attention_mask), and what sherpa-onnx loads:
encoder.onnx, decoder.onnx, joiner.onnx and tokens.txt (transducer), ctc.onnx (CTC), tagging.onnx and
tagging_labels.csv (tagging), speaker.onnx (speaker embedding), each only when the model has that head, and
encoder-streaming.onnx for sherpa-onnx's online recognizer when the model is a causal transducer; export.json
records dtype, opset, versions and each file's measured difference from PyTorch. See docs/export.md."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder (save_pretrained, with its tokenizer for ASR)")
    parser.add_argument("--output", required=True, help="folder to write the ONNX files into (created if missing)")
    parser.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "int8"),
        default="fp32",
        help="fp32 (default, exact); int8: onnxruntime dynamic quantisation of MatMul/Gemm weights; bf16 is refused "
        "with the reason (onnxruntime's CPU provider has no bfloat16 kernels for this model)",
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")


def run(args: argparse.Namespace) -> int:
    from training_mt2kd.export import OPSET, export_onnx

    report = export_onnx(args.model, args.output, dtype=args.dtype, opset=args.opset or OPSET)
    summary = {
        "output": str(report.output_dir),
        "dtype": report.dtype,
        "opset": report.opset,
        "max_abs_difference_from_pytorch": {
            name: max(info.get("max_abs_difference", {}).values(), default=0.0) for name, info in report.files.items()
        },
    }
    print(json.dumps(summary, indent=2))
    return 0


COMMAND = Command(
    name="export-onnx",
    help="export a model folder to ONNX (onnxruntime and sherpa-onnx files)",
    add_arguments=add_arguments,
    run=run,
    description=DESCRIPTION,
)
