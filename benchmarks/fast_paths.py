"""Fast paths, each measured against the code it replaces (or the setting it changes) in the same process.

- Transducer greedy search with the predictor's context convolution as one batched matmul per frame (now in
  `TransducerPredictor`) against `nn.Conv1d` as before; the decoded tokens must be identical.
- bf16 against fp32 for the one pass: how far the outputs move (CPU: autocast over fp32 weights; CUDA: bf16
  weights).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from modeling_mt2kd.decoding import greedy_search
from modeling_mt2kd.masks import mask_to_lengths

from .models import StudentOnePass, test_audio
from .timing import TimedCandidate, median_ratio, run_interleaved


class ConvContextPredictor(nn.Module):
    """The predictor's decoding path before the fast path: `context_conv` as `nn.Conv1d` (eval only)."""

    def __init__(self, predictor: nn.Module):
        super().__init__()
        self.predictor = predictor
        self.context_size, self.blank_id = predictor.context_size, predictor.blank_id

    def forward(self, tokens: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        assert not need_pad and not self.training
        embedded = self.predictor.embedding(tokens.clamp(min=0)) * (tokens >= 0).unsqueeze(-1)
        return F.relu(self.predictor.context_conv(embedded.transpose(1, 2)).transpose(1, 2))


def run_greedy_predictor_comparison(
    preset: str, batch_sizes: list[int], duration_s: float, device: torch.device, dtype: torch.dtype, rounds: int,
    report: Callable[[str], None] = print,
) -> list[dict]:
    """Greedy search on one encoder output, conv1d predictor vs batched-matmul predictor, interleaved."""
    student = StudentOnePass(preset, device, dtype)
    transducer = student.model.transducer
    reference = ConvContextPredictor(transducer.predictor).eval()
    rows = []
    for batch_size in batch_sizes:
        label = f"batch {batch_size} x {duration_s:g} s"
        report(f"fast path: greedy search predictor, {preset}, {label}, {device}")
        with torch.inference_mode():
            encoded = student.model.mt2kd(**student.inputs(test_audio(batch_size, duration_s)))
            lengths = mask_to_lengths(encoded.attention_mask)
            hidden = encoded.last_hidden_state

            def search(predictor: nn.Module):
                return greedy_search(hidden, lengths, predictor, transducer.joiner)

            before = TimedCandidate("predictor conv1d (before)", lambda: search(reference), warmup=2, rounds=rounds)
            after = TimedCandidate("predictor batched matmul (now)", lambda: search(transducer.predictor), warmup=2, rounds=rounds)
            run_interleaved([before, after], device, report)
            same_tokens = [hyp.tokens for hyp in search(reference)] == [hyp.tokens for hyp in search(transducer.predictor)]
        num_frames = int(lengths.sum())
        for candidate in (before, after):
            rows.append({
                "section": "fast_paths",
                "setting": label,
                "model": f"{preset} transducer greedy search, {candidate.name}",
                "batch_size": batch_size,
                "seconds": candidate.seconds,
                "cpu_seconds": candidate.cpu_seconds,
                "median_s": candidate.median_s,
                "median_cpu_s": candidate.median_cpu_s,
                "ms_per_encoder_frame": 1000 * candidate.median_s / (num_frames / batch_size),
                "audio_s_per_s": batch_size * duration_s / candidate.median_s,
            })
        speedup = median_ratio(before.seconds, after.seconds)
        rows[-1]["speedup"] = speedup
        rows[-1]["same_tokens_as_before"] = same_tokens
        report(
            f"  {label}: conv1d {before.median_s:.4f} s, batched matmul {after.median_s:.4f} s: {speedup:.2f}x, "
            f"same tokens: {same_tokens}"
        )
    return rows


def bf16_deviation(preset: str, batch_size: int, duration_s: float, device: torch.device) -> dict:
    """How far the bf16 one pass moves from fp32 on the same input (random weights): bf16 autocast over fp32
    weights on the CPU, bf16 weights on CUDA (as the inference section runs them)."""
    student = StudentOnePass(preset, device, torch.float32)
    inputs = student.inputs(test_audio(batch_size, duration_s))
    with torch.inference_mode():
        reference, reference_hyps = student.run(inputs)
        if device.type == "cuda":
            low_student = StudentOnePass(preset, device, torch.bfloat16, model=copy.deepcopy(student.model).to(torch.bfloat16))
            low, low_hyps = low_student.run({name: low_student._to_device(value) for name, value in inputs.items()})
            how = "bf16 weights"
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low, low_hyps = student.run(inputs)
            how = "bf16 autocast"

    def relative(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a.float() - b.float()).norm() / b.float().norm())

    same_positions = sum(sum(x == y for x, y in zip(a.tokens, b.tokens)) for a, b in zip(low_hyps, reference_hyps))
    return {
        "section": "fast_paths",
        "model": f"{preset} one pass, {how} vs fp32 ({device.type})",
        "setting": f"batch {batch_size} x {duration_s:g} s",
        "encoder_output_relative_error": relative(low.last_hidden_state, reference.last_hidden_state),
        "tagging_probability_max_abs_error": float(
            (low.tagging_logits.float().sigmoid() - reference.tagging_logits.sigmoid()).abs().max()
        ),
        "speaker_embedding_min_cosine": float(
            F.cosine_similarity(low.speaker_embeddings.float(), reference.speaker_embeddings, dim=-1).min()
        ),
        "ctc_argmax_agreement": float((low.ctc_logits.argmax(-1) == reference.ctc_logits.argmax(-1)).float().mean()),
        "transducer_token_agreement": same_positions / max(1, sum(len(b.tokens) for b in reference_hyps)),
    }
