"""When the encoder may take eager-inference shortcuts (in-place arithmetic, skipped no-ops)."""

import torch

from ..graph_capture import is_capturing_graph


def eager_inference() -> bool:
    """True when no autograd graph is being recorded (torch.no_grad / torch.inference_mode) and no
    graph is being captured (torch.compile, torch.export, ONNX export, TorchScript tracing).

    Then an intermediate tensor that only this code holds can be overwritten in place: nothing saved
    it for a backward pass, and no traced graph has to express the mutation. Results are identical
    (the same floating-point operations in the same order); only allocations and memory passes go.
    """
    return not torch.is_grad_enabled() and not is_capturing_graph()
