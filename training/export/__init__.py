"""ONNX export of MT2KD model folders, with the files sherpa-onnx loads (`mt2kd export-onnx`)."""

from .onnx_export import DTYPES, MODEL_FILE, OPSET, REPORT_FILE, ExportReport, export_onnx

__all__ = ["DTYPES", "MODEL_FILE", "OPSET", "REPORT_FILE", "ExportReport", "export_onnx"]
