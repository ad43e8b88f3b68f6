"""CUDA graphs for fixed shape buckets: capture an MT2KD forward once per (batch, frames) bucket, then replay it.

A CUDA graph replays a recorded kernel sequence with one launch, which removes the per-kernel launch cost that
dominates small batches (the encoder issues ~3,600 kernels per forward). A graph is recorded for fixed shapes, so
inputs are padded up to the nearest bucket and the attention mask marks the padding; MT2KD models are
padding-invariant, so valid frames equal the unpadded call. Rows added to fill a batch bucket are dropped from the
outputs; the time axis stays at the bucket's length and the output `attention_mask` marks the valid frames.

    runner = CUDAGraphRunner(model.cuda().eval().to(torch.bfloat16), ShapeBuckets((1, 8, 32), (1000, 3000)))
    outputs = runner(input_features.cuda().bfloat16(), attention_mask.cuda())

The model's forward must be graph-clean (no host synchronisation; MT2KD's forwards are, see
`tests/test_graph_capture.py`). The transducer's search loop is not captured: only the encoder (and the heads
of the model class) run inside the graph. `torch.compile(model, mode="reduce-overhead")` is the other route to
CUDA graphs (it records one per shape it sees); this runner gives explicit control over the shapes and memory.
On a CPU (or with `capture=False`) the runner runs the same bucketed calls eagerly, which is how its padding and
trimming are tested without a GPU.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers.utils import ModelOutput

__all__ = ["CUDAGraphRunner", "ShapeBuckets"]


@dataclass(frozen=True)
class ShapeBuckets:
    """Padded shapes to record: every batch size × every frame count (fbank frames at 100 Hz), ascending."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    num_frames: tuple[int, ...] = (1000, 3000)

    def __post_init__(self) -> None:
        for name, values in (("batch_sizes", self.batch_sizes), ("num_frames", self.num_frames)):
            if not values or list(values) != sorted(set(values)) or values[0] < 1:
                raise ValueError(f"{name} must be distinct positive integers in ascending order; got {values}")

    def bucket(self, batch_size: int, num_frames: int) -> tuple[int, int] | None:
        """The smallest bucket that holds (batch_size, num_frames), or None when none does."""
        batch_index = bisect.bisect_left(self.batch_sizes, batch_size)
        frame_index = bisect.bisect_left(self.num_frames, num_frames)
        if batch_index == len(self.batch_sizes) or frame_index == len(self.num_frames):
            return None
        return self.batch_sizes[batch_index], self.num_frames[frame_index]


@dataclass
class _RecordedCall:
    """Static input buffers, the recorded graph (None when running eagerly) and its static outputs."""

    input_features: torch.Tensor
    attention_mask: torch.Tensor
    graph: torch.cuda.CUDAGraph | None = None
    outputs: ModelOutput | None = None


@dataclass
class RunnerStats:
    captures: int = 0
    replays: int = 0
    eager_fallbacks: int = 0
    buckets: list[tuple[int, int]] = field(default_factory=list)


class CUDAGraphRunner:
    """Runs `model(input_features, attention_mask=...)` through per-bucket CUDA graphs.

    Args:
        model: an MT2KD model in eval mode on its device and dtype (e.g. bf16 on CUDA).
        buckets: the padded shapes to record; inputs larger than the largest bucket run eagerly (counted in
            `stats.eager_fallbacks`).
        capture: record CUDA graphs (default: when the model is on a CUDA device); False runs the same bucketed
            calls eagerly.
        warmup_calls: eager calls on a side stream before recording (lets lazy initialisation happen outside).
    """

    def __init__(self, model: nn.Module, buckets: ShapeBuckets = ShapeBuckets(), capture: bool | None = None,
                 warmup_calls: int = 2) -> None:
        if model.training:
            raise ValueError("CUDAGraphRunner records inference graphs; call model.eval() first")
        parameter = next(model.parameters())
        self.model, self.buckets, self.warmup_calls = model, buckets, warmup_calls
        self.device, self.dtype = parameter.device, parameter.dtype
        self.capture = self.device.type == "cuda" if capture is None else capture
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device; it is on {self.device}")
        self.num_mel_bins = model.config.num_mel_bins
        self.stats = RunnerStats()
        self._recorded: dict[tuple[int, int], _RecordedCall] = {}
        self._memory_pool = None

    @torch.inference_mode()
    def __call__(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> ModelOutput:
        """Outputs for (batch, frames, num_mel_bins) features with an optional (batch, frames) mask: batch rows
        as given, frame-level tensors at the bucket's length with the output `attention_mask` marking valid ones."""
        batch_size, num_frames = input_features.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, num_frames, dtype=torch.long, device=input_features.device)
        bucket = self.buckets.bucket(batch_size, num_frames)
        if bucket is None:
            self.stats.eager_fallbacks += 1
            return self.model(input_features.to(self.device, self.dtype), attention_mask=attention_mask.to(self.device))
        recorded = self._recorded.get(bucket) or self._record(bucket)
        recorded.input_features.zero_()
        recorded.input_features[:batch_size, :num_frames].copy_(input_features)
        # Filler rows are whole-length zeros: valid for the model, dropped from the outputs.
        recorded.attention_mask.fill_(1)
        recorded.attention_mask[:batch_size].zero_()
        recorded.attention_mask[:batch_size, :num_frames].copy_(attention_mask)
        if recorded.graph is not None:
            recorded.graph.replay()
            self.stats.replays += 1
            outputs = recorded.outputs
        else:
            outputs = self.model(recorded.input_features, attention_mask=recorded.attention_mask)
        return _rows(outputs, batch_size, bucket[0])

    def _record(self, bucket: tuple[int, int]) -> _RecordedCall:
        batch_size, num_frames = bucket
        recorded = _RecordedCall(
            input_features=torch.zeros(batch_size, num_frames, self.num_mel_bins, device=self.device, dtype=self.dtype),
            attention_mask=torch.ones(batch_size, num_frames, dtype=torch.long, device=self.device),
        )
        if self.capture:
            side_stream = torch.cuda.Stream(self.device)
            side_stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side_stream):
                for _ in range(self.warmup_calls):
                    self.model(recorded.input_features, attention_mask=recorded.attention_mask)
            torch.cuda.current_stream(self.device).wait_stream(side_stream)
            recorded.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(recorded.graph, pool=self._memory_pool):
                recorded.outputs = self.model(recorded.input_features, attention_mask=recorded.attention_mask)
            self._memory_pool = recorded.graph.pool()  # buckets share one memory pool
            self.stats.captures += 1
        self._recorded[bucket] = recorded
        self.stats.buckets.append(bucket)
        return recorded


def _rows(outputs: ModelOutput, batch_size: int, bucket_batch_size: int) -> ModelOutput:
    """The first `batch_size` rows of every batch-major tensor of `outputs` (copies: the static outputs of a
    graph are overwritten by the next replay)."""

    def take(value):
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == bucket_batch_size:
            return value[:batch_size].clone()
        if isinstance(value, tuple):
            return tuple(take(item) for item in value)
        return value

    return type(outputs)(**{name: take(value) for name, value in outputs.items()})
