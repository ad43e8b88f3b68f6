"""Run every exported file in onnxruntime on a check batch and measure its difference from the PyTorch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import sherpa_onnx_layout as sherpa
from .graphs import EncoderOutputs, MultiHeadEncoderGraph, TransducerDecoderGraph, TransducerJoinerGraph

__all__ = ["compare_with_pytorch", "max_abs_difference"]

CHECK_FRAMES = 180
CHECK_LENGTHS = (180, 123)  # the second utterance padded
# Padded CTC frames hold log-probabilities near float32's minimum (-3.4e38); clipping both sides keeps them equal.
CLIP = 1e4

# file → {onnx output: multi-head output it must equal}
ENCODER_FILE_OUTPUTS = {
    sherpa.ENCODER_FILE: {"encoder_out": EncoderOutputs.TRANSDUCER, "encoder_out_lens": EncoderOutputs.LENGTHS},
    sherpa.CTC_FILE: {"log_probs": EncoderOutputs.CTC, "log_probs_len": EncoderOutputs.LENGTHS},
    sherpa.TAGGING_FILE: {"probs": EncoderOutputs.TAGGING},
}


def max_abs_difference(onnx_value: np.ndarray, torch_value: torch.Tensor) -> float:
    """max |onnx - torch| over all elements, with values clipped to ±1e4; inf when the shapes differ."""
    reference = torch_value.detach().float().numpy() if torch_value.is_floating_point() else torch_value.numpy()
    if onnx_value.shape != reference.shape:
        return float("inf")
    if onnx_value.size == 0:
        return 0.0
    difference = np.clip(onnx_value.astype(np.float64), -CLIP, CLIP) - np.clip(reference.astype(np.float64), -CLIP, CLIP)
    return float(np.abs(difference).max())


def compare_with_pytorch(model: torch.nn.Module, folder: Path, files: dict[str, dict]) -> dict[str, dict[str, float]]:
    """{file: {output: max |onnxruntime - PyTorch|}} for every file of `files` in `folder`, on two random utterances
    of 180 and 123 fbank frames (batched, the second padded) and a batch of decoder / joiner inputs."""
    import onnxruntime

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(len(CHECK_LENGTHS), CHECK_FRAMES, model.config.num_mel_bins, generator=generator)
    x_lens = torch.tensor(CHECK_LENGTHS)
    encoder_graph = MultiHeadEncoderGraph(model).eval()
    with torch.no_grad():
        reference = dict(zip(encoder_graph.output_names, encoder_graph(x, x_lens)))
        unpadded = dict(zip(encoder_graph.output_names, encoder_graph(x, torch.full_like(x_lens, CHECK_FRAMES))))

    results = {}
    for file_name in files:
        session = onnxruntime.InferenceSession(str(folder / file_name), providers=["CPUExecutionProvider"])
        output_names = [output.name for output in session.get_outputs()]
        if file_name == "model.onnx":
            mask = (torch.arange(CHECK_FRAMES)[None, :] < x_lens[:, None]).long()
            feeds = {"input_features": x.numpy(), "attention_mask": mask.numpy()}
            expected = {name: reference[name] for name in output_names}
        elif file_name in ENCODER_FILE_OUTPUTS:
            feeds = {"x": x.numpy(), "x_lens": x_lens.numpy()}
            expected = {name: reference[source] for name, source in ENCODER_FILE_OUTPUTS[file_name].items()}
        elif file_name == sherpa.SPEAKER_FILE:
            feeds = {"x": x.numpy()}
            expected = {"embedding": unpadded[EncoderOutputs.SPEAKER]}
        elif file_name == sherpa.DECODER_FILE:
            vocab_size = model.config.vocab_size
            y = torch.randint(0, vocab_size, (4, model.config.context_size), generator=generator)
            y[0, :-1] = -1
            with torch.no_grad():
                expected = {"decoder_out": TransducerDecoderGraph(model.transducer)(y)}
            feeds = {"y": y.numpy()}
        elif file_name == sherpa.JOINER_FILE:
            encoder_out, decoder_out = (torch.randn(4, model.config.joiner_dim, generator=generator) for _ in range(2))
            with torch.no_grad():
                expected = {"logit": TransducerJoinerGraph(model.transducer)(encoder_out, decoder_out)}
            feeds = {"encoder_out": encoder_out.numpy(), "decoder_out": decoder_out.numpy()}
        else:
            raise ValueError(f"no check is defined for {file_name}")
        values = dict(zip(output_names, session.run(output_names, feeds)))
        results[file_name] = {name: max_abs_difference(values[name], expected[name]) for name in expected}
    return results
