"""Graph-clean forwards: torch.compile(fullgraph=True, dynamic=True) and torch.export capture every model
class and the transducer's steps, the captured graphs equal eager over many lengths and with padding, and
changing the length does not recompile."""

import numpy as np
import pytest
import torch
import torch.fx.experimental._config as fx_config
from torch._dynamo.utils import counters
from torch.export import Dim

from configuration_mt2kd import MIN_INPUT_FRAMES, MT2KDConfig
from modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForMultiTask,
    MT2KDForXVector,
    MT2KDModel,
)
from modeling_mt2kd.graph_capture import is_capturing_graph, min_graph_frames
from modeling_mt2kd.heads import TransducerHead
from processing_mt2kd.feature_extraction_mt2kd import MT2KDFeatureExtractor
from processing_mt2kd.pipelines.audio_input import read_audio_input

MODEL_CLASSES = [MT2KDModel, MT2KDForCTC, MT2KDForAudioClassification, MT2KDForXVector, MT2KDForMultiTask]
# (frames of the longest utterance, frames of the shorter one): five lengths, every remainder mod 8.
LENGTHS = [(40, 33), (57, 57), (64, 29), (91, 70), (130, 101)]
TOLERANCE = 1e-5


def tiny_config() -> MT2KDConfig:
    return MT2KDConfig.from_preset("mt2kd-tiny", num_labels=5, num_speakers=3, speaker_embedding_dim=16)


def make_model(model_class):
    torch.manual_seed(0)
    return model_class(tiny_config()).eval()


def padded_batch(frames: int, shorter: int, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(frames)
    features = torch.randn(batch_size, frames, 80, generator=generator)
    mask = torch.ones(batch_size, frames, dtype=torch.long)
    mask[-1, shorter:] = 0
    return features, mask


def output_tensors(output) -> dict[str, torch.Tensor]:
    return {key: value for key, value in output.items() if isinstance(value, torch.Tensor)}


def assert_outputs_equal(eager, captured) -> None:
    eager, captured = output_tensors(eager), output_tensors(captured)
    assert eager.keys() == captured.keys() and eager
    for key in eager:
        assert eager[key].shape == captured[key].shape, key
        difference = (eager[key].float() - captured[key].float()).abs().max().item()
        assert difference <= TOLERANCE, f"{key}: max abs difference {difference}"


def test_pretrained_classes_claim_full_graph_compile():
    assert MT2KDModel._can_compile_fullgraph


@pytest.mark.parametrize("model_class", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_full_graph_compile_equals_eager_over_lengths_without_recompiling(model_class):
    model = make_model(model_class)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend="eager")
    with torch.no_grad():
        for frames, shorter in LENGTHS:
            features, mask = padded_batch(frames, shorter)
            assert_outputs_equal(model(features, attention_mask=mask), compiled(features, attention_mask=mask))
    # One graph for every length and padding: the time axis is symbolic, nothing guards on its value.
    assert counters["stats"]["unique_graphs"] == 1
    torch._dynamo.reset()


def test_batch_of_one_and_no_mask_add_at_most_one_graph():
    model = make_model(MT2KDModel)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend="eager")
    with torch.no_grad():
        for frames in (50, 77, 101):
            features = torch.randn(1, frames, 80)
            assert_outputs_equal(model(features), compiled(features))
    assert counters["stats"]["unique_graphs"] <= 2  # PyTorch specialises a size-1 batch
    torch._dynamo.reset()


def export_model(model, config: MT2KDConfig):
    """torch.export with a dynamic batch (from 1) and time axis, as the ONNX exporter captures models
    (size-oblivious shape reasoning)."""
    features, mask = padded_batch(100, 80)
    batch, frames = Dim("batch", min=1, max=256), Dim("frames", min=min_graph_frames(config), max=100_000)
    axes = {0: batch, 1: frames}
    with fx_config.patch(backed_size_oblivious=True):
        return torch.export.export(
            model, (features,), {"attention_mask": mask},
            dynamic_shapes={"input_features": axes, "attention_mask": axes},
        )


@pytest.mark.parametrize("model_class", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_exported_graph_with_dynamic_batch_and_time_equals_eager(model_class):
    model = make_model(model_class)
    exported = export_model(model, model.config).module()
    shortest = min_graph_frames(model.config)
    with torch.no_grad():
        for batch_size, frames, shorter in [(1, shortest, shortest), (1, 50, 50), (3, 61, 40), (2, 77, 77), (4, 133, 90)]:
            features, mask = padded_batch(frames, shorter, batch_size)
            assert_outputs_equal(model(features, attention_mask=mask), exported(features, attention_mask=mask))


class PredictorStep(torch.nn.Module):
    """One decoding step of the predictor: the last `context_size` tokens → (batch, 1, decoder_dim)."""

    def __init__(self, transducer: TransducerHead):
        super().__init__()
        self.predictor = transducer.predictor

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.predictor(context, need_pad=False)


class JoinerStep(torch.nn.Module):
    def __init__(self, transducer: TransducerHead):
        super().__init__()
        self.joiner = transducer.joiner

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.joiner(encoder_out, decoder_out)


def test_transducer_predictor_and_joiner_steps_capture_with_dynamic_batch():
    config = tiny_config()
    torch.manual_seed(0)
    transducer = TransducerHead.from_config(config).eval()
    predictor_step, joiner_step = PredictorStep(transducer), JoinerStep(transducer)
    context = torch.tensor([[-1, 3], [4, 5], [6, 0]])
    decoder_out = predictor_step(context)[:, 0]
    batch = Dim("batch", min=1, max=256)
    with torch.no_grad(), fx_config.patch(backed_size_oblivious=True):
        exported_predictor = torch.export.export(predictor_step, (context,), dynamic_shapes=({0: batch},)).module()
        exported_joiner = torch.export.export(
            joiner_step, (torch.randn(3, config.output_dim), decoder_out), dynamic_shapes=({0: batch}, {0: batch})
        ).module()
    compiled_predictor = torch.compile(predictor_step, fullgraph=True, dynamic=True, backend="eager")
    compiled_joiner = torch.compile(joiner_step, fullgraph=True, dynamic=True, backend="eager")
    with torch.no_grad():
        for batch_size in (1, 2, 5):
            context = torch.randint(-1, config.vocab_size, (batch_size, config.context_size))
            frame = torch.randn(batch_size, config.output_dim)
            decoder_out = predictor_step(context)
            for predictor in (exported_predictor, compiled_predictor):
                assert (predictor(context) - decoder_out).abs().max() <= TOLERANCE
            logits = joiner_step(frame, decoder_out[:, 0])
            for joiner in (exported_joiner, compiled_joiner):
                assert (joiner(frame, decoder_out[:, 0]) - logits).abs().max() <= TOLERANCE
    torch._dynamo.reset()


def test_eager_forward_still_refuses_too_short_input_with_a_clear_error():
    model = make_model(MT2KDModel)
    features, mask = padded_batch(40, MIN_INPUT_FRAMES - 1)
    with pytest.raises(ValueError, match=f"at least {MIN_INPUT_FRAMES} fbank frames"):
        model(features, attention_mask=mask)
    assert not is_capturing_graph(features.device)


def test_pipelines_refuse_audio_too_short_for_the_encoder_before_the_forward():
    feature_extractor = MT2KDFeatureExtractor()
    shortest = MIN_INPUT_FRAMES * feature_extractor.hop_length - feature_extractor.hop_length // 2
    assert feature_extractor.num_frames(shortest) == MIN_INPUT_FRAMES
    assert len(read_audio_input(np.zeros(shortest, np.float32), feature_extractor)) == shortest
    with pytest.raises(ValueError, match=f"at least {MIN_INPUT_FRAMES} fbank frames"):
        read_audio_input(np.zeros(shortest - 1, np.float32), feature_extractor)


@pytest.mark.slow
def test_inductor_compiled_encoder_equals_eager():
    model = make_model(MT2KDModel)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    with torch.no_grad():
        for frames, shorter in LENGTHS[:3]:
            features, mask = padded_batch(frames, shorter)
            assert_outputs_equal(model(features, attention_mask=mask), compiled(features, attention_mask=mask))
    torch._dynamo.reset()
