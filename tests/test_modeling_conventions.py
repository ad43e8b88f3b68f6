"""The MT2KD models follow transformers' conventions where a user or a library touches them (issue 15):
label checks, tuple outputs, common config attributes, single-label classification, gradient
checkpointing, attention weights, and no silently dropped keyword arguments."""

import random

import pytest
import torch

from configuration_mt2kd import IGNORE_INDEX, MT2KDConfig
from modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForDistillation,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDModel,
)
from modeling_mt2kd.encoder.attention import RelPositionAttentionWeights
from modeling_mt2kd.masks import lengths_to_mask

NUM_LABELS = 5
ALL_MODELS = [
    MT2KDModel, MT2KDForCTC, MT2KDForRNNT, MT2KDForAudioClassification, MT2KDForXVector, MT2KDForMultiTask,
    MT2KDForDistillation,
]


def tiny_config(**overrides) -> MT2KDConfig:
    values = dict(num_labels=NUM_LABELS, num_speakers=3, speaker_embedding_dim=16, whisper_dim=8)
    return MT2KDConfig.from_preset("mt2kd-tiny", **{**values, **overrides})


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), 80, generator=generator)
    mask = lengths_to_mask(torch.tensor(lengths), max(lengths))
    return features.masked_fill(~mask.unsqueeze(-1), 0.0), mask.long()


def asr_labels(vocab_size: int) -> torch.Tensor:
    labels = torch.tensor([[3, 4, 5], [6, 7, 8]])
    labels[1, 2] = IGNORE_INDEX
    return labels


# 1. Labels outside the vocabulary


@pytest.mark.parametrize("model_class", [MT2KDForCTC, MT2KDForRNNT, MT2KDForMultiTask])
@pytest.mark.parametrize("bad_id", [50, 53, -1, -7])
def test_asr_labels_outside_the_vocabulary_raise_a_value_error_naming_the_vocabulary_size(model_class, bad_id):
    model = model_class(tiny_config()).eval()  # vocab_size 50
    features, mask = padded_batch([96, 80])
    labels = asr_labels(50)
    labels[0, 1] = bad_id
    with pytest.raises(ValueError, match=rf"vocab_size=50.*{bad_id}"):
        model(features, mask, labels=labels)


def test_multitask_checks_only_the_labels_of_samples_that_carry_asr():
    model = MT2KDForMultiTask(tiny_config()).eval()
    features, mask = padded_batch([96, 80])
    labels = asr_labels(50)
    labels[1, 0] = 999  # sample 1 has no ASR task: its row is never read
    with torch.no_grad():
        out = model(features, mask, labels=labels, asr_mask=torch.tensor([True, False]))
    assert torch.isfinite(out.ctc_loss) and torch.isfinite(out.transducer_loss)


def test_labels_inside_the_vocabulary_padded_with_the_ignore_index_give_a_finite_loss():
    model = MT2KDForCTC(tiny_config()).eval()
    features, mask = padded_batch([96, 80])
    labels = asr_labels(50)
    labels[0, 0] = 49
    with torch.no_grad():
        assert torch.isfinite(model(features, mask, labels=labels).loss)


def test_the_label_check_reads_no_label_values_without_labels(monkeypatch):
    import modeling_mt2kd.heads.labels as label_module

    calls = []
    monkeypatch.setattr(label_module, "check_label_ids", lambda *args: calls.append(args))
    model = MT2KDForMultiTask(tiny_config()).eval()
    with torch.no_grad():
        model(*padded_batch([96, 80]))
    assert calls == []


# 2. return_dict=False


def model_inputs(model_class, config: MT2KDConfig) -> dict:
    features, mask = padded_batch([96, 80])
    inputs = {"input_features": features, "attention_mask": mask}
    if model_class in (MT2KDForCTC, MT2KDForRNNT, MT2KDForMultiTask):
        inputs["labels"] = asr_labels(config.vocab_size)
    if model_class is MT2KDForAudioClassification:
        inputs["labels"] = torch.zeros(2, config.num_labels)
    if model_class is MT2KDForXVector:
        inputs["labels"] = torch.tensor([0, 2])
    return inputs


@pytest.mark.parametrize("model_class", ALL_MODELS)
def test_return_dict_false_returns_the_output_fields_that_are_set_as_a_tuple(model_class):
    torch.manual_seed(0)
    config = tiny_config()
    model = model_class(config).eval()
    inputs = model_inputs(model_class, config)
    with torch.no_grad():
        as_dict = model(**inputs)
        as_tuple = model(**inputs, return_dict=False)
    assert type(as_tuple) is tuple
    expected = [value for value in as_dict.values() if value is not None]
    assert len(as_tuple) == len(expected)
    for ours, reference in zip(as_tuple, expected):
        torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("model_class", ALL_MODELS)
def test_config_return_dict_false_returns_a_tuple_and_the_argument_overrides_it(model_class):
    config = tiny_config(return_dict=False)
    model = model_class(config).eval()
    inputs = model_inputs(model_class, config)
    with torch.no_grad():
        assert type(model(**inputs)) is tuple
        assert not isinstance(model(**inputs, return_dict=True), tuple)


# 3. hidden_size and num_hidden_layers


def test_config_exposes_hidden_size_and_num_hidden_layers():
    config = tiny_config()
    assert config.hidden_size == 64 == config.output_dim  # the widest stack
    assert config.num_hidden_layers == 1 + 2 + 2 + 1
    paper = MT2KDConfig.from_preset("mt2kd-66m")
    assert (paper.hidden_size, paper.num_hidden_layers) == (512, 16)
    assert MT2KDModel(config)(*padded_batch([96])).last_hidden_state.shape[-1] == config.hidden_size


def test_hidden_size_and_num_hidden_layers_are_derived_and_survive_save_and_load(tmp_path):
    config = tiny_config()
    with pytest.raises(AttributeError, match="encoder_dim"):
        config.hidden_size = 128
    with pytest.raises(AttributeError, match="num_encoder_layers"):
        config.num_hidden_layers = 3
    config.save_pretrained(tmp_path)
    loaded = MT2KDConfig.from_pretrained(tmp_path)
    assert (loaded.hidden_size, loaded.num_hidden_layers) == (64, 6)
    assert MT2KDConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_a_saved_hidden_size_is_accepted_when_consistent_and_rejected_otherwise():
    values = tiny_config().to_dict()
    assert MT2KDConfig.from_dict({**values, "hidden_size": 64, "num_hidden_layers": 6}).hidden_size == 64
    with pytest.raises(ValueError, match="hidden_size=128.*encoder_dim"):
        MT2KDConfig.from_dict({**values, "hidden_size": 128})
    with pytest.raises(ValueError, match="num_hidden_layers=3.*num_encoder_layers"):
        MT2KDConfig.from_dict({**values, "num_hidden_layers": 3})


# 6. Single-label audio classification


def test_single_label_classification_is_softmax_cross_entropy_on_class_indices():
    torch.manual_seed(0)
    config = tiny_config(problem_type="single_label_classification")
    model = MT2KDForAudioClassification(config).eval()
    features, mask = padded_batch([96, 80])
    labels = torch.tensor([1, 4])
    with torch.no_grad():
        out = model(features, mask, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits, labels)
    torch.testing.assert_close(out.loss, expected)


def test_multi_label_classification_stays_the_default_bce_over_classes():
    torch.manual_seed(0)
    model = MT2KDForAudioClassification(tiny_config()).eval()
    features, mask = padded_batch([96, 80])
    targets = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 0]])
    with torch.no_grad():
        out = model(features, mask, labels=targets)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets, reduction="none")
    torch.testing.assert_close(out.loss, bce.sum(-1).mean())


def test_single_label_classification_with_out_of_range_classes_raises_a_clear_error():
    model = MT2KDForAudioClassification(tiny_config(problem_type="single_label_classification")).eval()
    with pytest.raises(ValueError, match="num_labels=5"):
        model(*padded_batch([96, 80]), labels=torch.tensor([1, 5]))


def test_regression_problem_type_is_rejected_by_the_config():
    with pytest.raises(ValueError, match="problem_type='regression'"):
        tiny_config(problem_type="regression")


# 7. Gradient checkpointing


def training_step_gradients(checkpointing: bool, use_gradient_checkpointing_enable: bool = False) -> dict:
    torch.manual_seed(0)
    model = MT2KDForMultiTask(tiny_config())
    if checkpointing:
        if use_gradient_checkpointing_enable:
            with pytest.warns(FutureWarning):
                model.gradient_checkpointing_enable()
        else:
            model.activation_checkpointing_enable()
    model.train()
    inputs = model_inputs(MT2KDForMultiTask, model.config)
    torch.manual_seed(1)
    random.seed(1)
    # batch_count 0: every training regulariser (layer and module skips, dropout, balancers) at its highest rate.
    model(**inputs, batch_count=0.0).loss.backward()
    after = (torch.rand(()).item(), random.random())  # the RNG state the step leaves behind
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}, after


def test_gradient_checkpointing_gives_the_same_gradients_and_rng_state_as_without():
    plain, plain_after = training_step_gradients(checkpointing=False)
    checkpointed, checkpointed_after = training_step_gradients(checkpointing=True)
    assert checkpointed.keys() == plain.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")
    assert checkpointed_after == plain_after


def test_gradient_checkpointing_enable_checkpoints_every_zipformer_layer():
    from transformers.modeling_layers import GradientCheckpointingLayer

    model = MT2KDForCTC(tiny_config())
    assert model.supports_gradient_checkpointing
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert len(layers) == model.config.num_hidden_layers
    with pytest.warns(FutureWarning):  # transformers' deprecated spelling still works
        model.gradient_checkpointing_enable()
    assert model.is_activation_checkpointing and all(layer.gradient_checkpointing for layer in layers)
    attention_runs = []  # transformers checkpoints `forward`, so a hook on a module inside the layer sees the rerun
    for layer in layers:
        layer.self_attn_weights.register_forward_hook(lambda *_: attention_runs.append(1))
    model.train()
    model(**model_inputs(MT2KDForCTC, model.config)).loss.backward()
    assert len(attention_runs) == 2 * len(layers)  # each layer ran again in the backward pass


def test_reentrant_gradient_checkpointing_is_refused_with_the_reason():
    model = MT2KDForCTC(tiny_config())
    with pytest.raises(ValueError, match="use_reentrant=False"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})


# 8. Attention weights


@pytest.mark.parametrize("model_class", ALL_MODELS)
def test_output_attentions_returns_each_layers_weights_at_its_stacks_frame_rate(model_class):
    config = tiny_config()
    model = model_class(config).eval()
    lengths = [96, 80]
    features, mask = padded_batch(lengths)
    with torch.no_grad():
        out = model(features, mask, output_attentions=True)
        plain = model(features, mask)
    assert plain.attentions is None
    attentions = out.attentions
    assert len(attentions) == config.num_hidden_layers
    frames_50hz = [(length - 7) // 2 for length in lengths]  # the front end's output frames
    factors = [f for layers, f in zip(config.num_encoder_layers, config.downsampling_factor) for _ in range(layers)]
    heads = [h for layers, h in zip(config.num_encoder_layers, config.num_attention_heads) for _ in range(layers)]
    frames = [-(-frames_50hz[0] // f) for f in factors]  # ceil: the stack's frame rate is 50 Hz / factor
    assert [tuple(a.shape) for a in attentions] == [(2, h, t, t) for h, t in zip(heads, frames)]
    for weights, factor in zip(attentions, factors):
        torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))  # rows are distributions
        valid_keys = -(-frames_50hz[1] // factor)
        assert weights[1, :, :, valid_keys:].abs().max() == 0  # the shorter utterance's padded keys get no weight


def test_config_output_attentions_turns_them_on():
    config = tiny_config()
    config.output_attentions = True
    with torch.no_grad():
        out = MT2KDModel(config).eval()(*padded_batch([96]))
    assert len(out.attentions) == config.num_hidden_layers


def test_attentions_come_from_the_attention_weight_modules():
    model = MT2KDModel(tiny_config()).eval()
    recorded = []
    for module in model.modules():
        if isinstance(module, RelPositionAttentionWeights):
            module.register_forward_hook(lambda _m, _a, output: recorded.append(output))
    with torch.no_grad():
        out = model(*padded_batch([96]), output_attentions=True)
    assert len(recorded) == len(out.attentions)
    assert all(a is b for a, b in zip(out.attentions, recorded))


# Unknown keyword arguments


@pytest.mark.parametrize("model_class", ALL_MODELS)
def test_unknown_keyword_arguments_are_refused_not_dropped(model_class):
    model = model_class(tiny_config()).eval()
    with pytest.raises(TypeError, match="input_values"):
        model(*padded_batch([96]), input_values=torch.zeros(1, 16000))


# Output attention mask


@pytest.mark.parametrize("model_class", ALL_MODELS)
def test_every_output_with_25hz_frames_carries_the_mask_of_its_valid_frames(model_class):
    model = model_class(tiny_config()).eval()
    features, mask = padded_batch([96, 80])
    with torch.no_grad():
        out = model(features, mask)
        alone = model.mt2kd(features[1:, :80]) if model_class is not MT2KDModel else model(features[1:, :80])
    frames = [value for key, value in out.items() if value is not None and value.ndim == 3 and key != "attentions"]
    if model_class in (MT2KDForAudioClassification, MT2KDForXVector):  # clip-level outputs: no 25 Hz frames
        assert frames == [] and "attention_mask" not in out
        return
    assert out.attention_mask.shape == frames[0].shape[:2] and out.attention_mask.dtype == torch.long
    assert out.attention_mask[0].all() and out.attention_mask[1].sum() == alone.last_hidden_state.shape[1]
