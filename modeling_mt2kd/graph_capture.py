"""Whether a forward pass is being captured as a graph (torch.compile, torch.export, ONNX, CUDA graphs).

Checks that read tensor values (`bool(tensor.any())`) are host synchronisations: they break a captured
graph and stall a GPU. The model runs them only in plain eager mode, where they give clear errors.
"""

import torch


def is_capturing_graph(device: torch.device | None = None) -> bool:
    """True under torch.compile / torch.export (hence dynamo ONNX export) tracing, TorchScript tracing
    or scripting, or CUDA-graph capture on `device`'s current stream."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    return device is not None and device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def min_graph_frames(config) -> int:
    """Fewest fbank frames of a graph exported with a dynamic time axis (`torch.export.Dim(min=...)`).

    With one frame at some stack, PyTorch's view and broadcast rules take special cases that an
    exported graph cannot cover together with the general one, so exported graphs start where every
    stack has two frames: (frames - 7) // 2 >= max downsampling factor + 1. (Eager and
    `torch.compile` run down to `MIN_INPUT_FRAMES`; compile traces such inputs as another graph.)
    """
    slowest = max(max(config.downsampling_factor), config.output_downsampling_factor)
    return 2 * (slowest + 1) + 7
