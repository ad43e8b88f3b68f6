"""The CUDA-graph runner's buckets: padded, bucketed calls give the unpadded outputs on every valid frame and row.

The capture itself needs a GPU (benchmarks/gpu_check.sh exercises it); here the runner makes the same bucketed
calls eagerly (`capture=False`), which is where its padding, filler rows and trimming can go wrong, and every
model forward runs on a fake CUDA device to check it copies nothing from the host (what capture refuses).
"""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import modeling_mt2kd.modeling_mt2kd as modeling_module
from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDModel,
)
from training_mt2kd.export.cuda_graphs import CUDAGraphRunner, ShapeBuckets


def _tiny(model_class):
    torch.manual_seed(0)
    return model_class(MT2KDConfig.from_preset("mt2kd-tiny")).eval()


def test_bucket_is_the_smallest_that_holds_the_input():
    buckets = ShapeBuckets(batch_sizes=(1, 4), num_frames=(100, 300))
    assert buckets.bucket(1, 50) == (1, 100)
    assert buckets.bucket(2, 100) == (4, 100)
    assert buckets.bucket(3, 101) == (4, 300)
    assert buckets.bucket(5, 10) is None
    assert buckets.bucket(1, 301) is None


@pytest.mark.parametrize("bad", [(), (4, 1), (0, 2), (2, 2)])
def test_buckets_must_be_ascending_positive_and_distinct(bad):
    with pytest.raises(ValueError, match="ascending"):
        ShapeBuckets(batch_sizes=bad)


def test_bucketed_encoder_equals_the_direct_call_on_valid_frames():
    model = _tiny(MT2KDModel)
    runner = CUDAGraphRunner(model, ShapeBuckets(batch_sizes=(1, 4), num_frames=(128, 256)), capture=False)
    for lengths in ([60], [90, 128], [200, 130, 64]):
        features = torch.randn(len(lengths), max(lengths), 80)
        mask = (torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]).long()
        with torch.no_grad():
            direct = model(features, attention_mask=mask)
        bucketed = runner(features, attention_mask=mask)
        assert bucketed.last_hidden_state.shape[0] == len(lengths)
        for row in range(len(lengths)):
            valid = int(direct.attention_mask[row].sum())
            assert int(bucketed.attention_mask[row].sum()) == valid
            torch.testing.assert_close(
                bucketed.last_hidden_state[row, :valid], direct.last_hidden_state[row, :valid], atol=1e-5, rtol=0
            )
    assert runner.stats.buckets == [(1, 128), (4, 128), (4, 256)]
    assert runner.stats.captures == 0 and runner.stats.eager_fallbacks == 0


def test_clip_level_heads_keep_their_rows_and_ctc_logits_match():
    tagger, ctc = _tiny(MT2KDForAudioClassification), _tiny(MT2KDForCTC)
    features = torch.randn(3, 150, 80)
    buckets = ShapeBuckets(batch_sizes=(4,), num_frames=(200,))
    with torch.no_grad():
        tags, logits = tagger(features).logits, ctc(features).logits
    bucketed_tags = CUDAGraphRunner(tagger, buckets, capture=False)(features).logits
    bucketed_ctc = CUDAGraphRunner(ctc, buckets, capture=False)(features)
    torch.testing.assert_close(bucketed_tags, tags, atol=1e-5, rtol=0)
    torch.testing.assert_close(bucketed_ctc.logits[:, : logits.shape[1]], logits, atol=1e-5, rtol=0)


def test_inputs_beyond_the_largest_bucket_run_eagerly_and_are_counted():
    model = _tiny(MT2KDModel)
    runner = CUDAGraphRunner(model, ShapeBuckets(batch_sizes=(1,), num_frames=(64,)), capture=False)
    outputs = runner(torch.randn(2, 80, 80))
    assert outputs.last_hidden_state.shape[0] == 2
    assert runner.stats.eager_fallbacks == 1


def test_capture_needs_eval_mode_and_a_cuda_device():
    model = _tiny(MT2KDModel)
    with pytest.raises(ValueError, match="CUDA device"):
        CUDAGraphRunner(model, capture=True)
    with pytest.raises(ValueError, match="eval"):
        CUDAGraphRunner(model.train())


class _HostToDeviceCopies(TorchDispatchMode):
    """Records every op that reads a CPU tensor and writes a CUDA one: CUDA-graph capture refuses such copies
    ("Cannot copy between CPU and CUDA tensors during CUDA graph capture"). Seen on an H200: `logits[i] = 0.0`."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = [leaf for value in (*args, *kwargs.values()) for leaf in (value if isinstance(value, (list, tuple)) else [value])]
        result = func(*args, **kwargs)
        results = result if isinstance(result, (list, tuple)) else [result]
        reads_host = any(isinstance(value, torch.Tensor) and value.device.type == "cpu" for value in flat)
        writes_device = any(isinstance(value, torch.Tensor) and value.device.type == "cuda" for value in results)
        if reads_host and writes_device:
            self.ops.append(str(func))
        return result


def test_the_detector_sees_a_host_scalar_written_into_a_cuda_tensor():
    with FakeTensorMode(allow_non_fake_inputs=True), _HostToDeviceCopies() as copies:
        values = torch.zeros(5, device="cuda")
        values[2] = 1.0
    assert copies.ops == ["aten.copy_.default"]


@pytest.mark.parametrize(
    "model_class", [MT2KDModel, MT2KDForCTC, MT2KDForRNNT, MT2KDForAudioClassification, MT2KDForXVector, MT2KDForMultiTask]
)
def test_forwards_copy_nothing_from_the_host_so_cuda_graphs_can_capture_them(model_class, monkeypatch):
    # A fake CUDA device (no GPU needed); the eager-only length check is skipped as it is under capture.
    monkeypatch.setattr(modeling_module, "is_capturing_graph", lambda device=None: True)
    with FakeTensorMode(allow_non_fake_inputs=True):
        with torch.device("cuda"):
            model = model_class(MT2KDConfig.from_preset("mt2kd-tiny")).eval()
            features = torch.randn(2, 300, 80)
            mask = torch.ones(2, 300, dtype=torch.long)
        with torch.inference_mode(), _HostToDeviceCopies() as copies:
            output = model(features, attention_mask=mask)
            if model_class is MT2KDForRNNT:
                transducer = model.transducer
                decoder_out = transducer.joiner.decoder_proj(
                    transducer.predictor(torch.zeros(2, model.config.context_size, dtype=torch.long, device="cuda"), need_pad=False)
                )
                transducer.joiner(transducer.joiner.encoder_proj(output.encoder_out[:, :1]), decoder_out, project_input=False)
    assert copies.ops == []
