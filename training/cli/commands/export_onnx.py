"""`mt2kd export-onnx`: the command lives with the export code (`training_mt2kd.export.command`)."""

from training_mt2kd.export.command import COMMAND

__all__ = ["COMMAND"]
