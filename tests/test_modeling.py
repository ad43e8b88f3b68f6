"""The MT2KD model family: sizes, padding invariance, losses, gradients, regularisers, save/load."""

import json

import pytest
import torch

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import (
    MT2KDForAudioClassification,
    MT2KDForCTC,
    MT2KDForDistillation,
    MT2KDForMultiTask,
    MT2KDForRNNT,
    MT2KDForXVector,
    MT2KDModel,
)
from modeling_mt2kd.convert_icefall import rename_key
from modeling_mt2kd.masks import lengths_to_mask

from .conftest import FIXTURES_DIR

MANIFEST = FIXTURES_DIR / "icefall_mt2kd_66m_manifest.json"
NUM_LABELS = 5


def tiny_config(**overrides) -> MT2KDConfig:
    values = dict(num_labels=NUM_LABELS, num_speakers=3, speaker_embedding_dim=16, whisper_dim=8)
    return MT2KDConfig.from_preset("mt2kd-tiny", **{**values, **overrides})


def padded_batch(lengths: list[int], pad_value: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), 80, generator=generator)
    mask = lengths_to_mask(torch.tensor(lengths), max(lengths))
    return features.masked_fill(~mask.unsqueeze(-1), pad_value), mask.long()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def test_encoder_has_exactly_the_authors_parameter_count(manifest):
    model = MT2KDModel(MT2KDConfig.from_preset("mt2kd-66m"))
    assert model.num_parameters() == manifest["encoder_embed_plus_encoder_parameters"] == 63_994_103


def test_distillation_model_has_exactly_the_authors_stage1_total(manifest):
    model = MT2KDForDistillation(MT2KDConfig.from_preset("mt2kd-66m"))
    assert model.num_parameters() == manifest["models"]["stage1_MultiKDModel"]["total_unique_parameters"]


def test_multitask_model_matches_the_authors_asr_at_sv_total(manifest):
    reference = manifest["models"]["stage2_AsrModel_ASR_AT_SV"]
    num_speakers = next(k["shape"][0] for k in reference["keys"] if k["name"] == "speaker_classifier.weight")
    config = MT2KDConfig.from_preset("mt2kd-66m", use_ctc=False, num_speakers=num_speakers)
    # The authors' tagging head is one module under two names (audio_tagging_decoder/beats_decoder).
    assert MT2KDForMultiTask(config).num_parameters() == reference["total_unique_parameters"]


@pytest.mark.parametrize(
    "model_name, model_class, overrides",
    [
        ("stage1_MultiKDModel", MT2KDForDistillation, {}),
        ("stage2_AsrModel_ASR_AT_SV", MT2KDForMultiTask, {"use_ctc": False, "num_speakers": 1211}),
        ("stage2_AsrModel_defaults", MT2KDForMultiTask, {"use_ctc": False, "use_audio_tagging": False, "num_speakers": 1211}),
    ],
)
def test_converter_maps_every_full_size_key_with_matching_shapes(manifest, model_name, model_class, overrides):
    with torch.device("meta"):
        model = model_class(MT2KDConfig.from_preset("mt2kd-66m", **overrides))
    ours = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    mapped = set()
    for key in manifest["models"][model_name]["keys"]:
        target = rename_key(key["name"])
        assert target in ours, f"{key['name']} → {target} is not a parameter of {model_class.__name__}"
        assert ours[target] == tuple(key["shape"]), key["name"]
        mapped.add(target)
    assert mapped == set(ours)


ALL_HEADS = [MT2KDForCTC, MT2KDForRNNT, MT2KDForAudioClassification, MT2KDForXVector, MT2KDForMultiTask, MT2KDForDistillation]


def head_outputs(model, features, mask) -> dict[str, torch.Tensor]:
    out = model(features, attention_mask=mask)
    return {name: value for name, value in out.items() if isinstance(value, torch.Tensor) and value.is_floating_point()}


@pytest.mark.parametrize("model_class", ALL_HEADS)
def test_padded_batch_equals_each_utterance_alone_for_every_head(model_class):
    torch.manual_seed(0)
    model = model_class(tiny_config()).eval()
    lengths = [131, 97, 40]
    for pad_value in (0.0, -23.0, 1e4):
        features, mask = padded_batch(lengths, pad_value)
        with torch.no_grad():
            batched = head_outputs(model, features, mask)
            for b, length in enumerate(lengths):
                alone = head_outputs(model, features[b : b + 1, :length], None)
                for name, value in alone.items():
                    frames = value.shape[1] if value.ndim == 3 else None
                    ours = batched[name][b, :frames] if frames else batched[name][b]
                    torch.testing.assert_close(ours, value[0], atol=1e-5, rtol=1e-5, msg=lambda m: f"{name}: {m}")


def labels_for(model_class, batch_size: int, config: MT2KDConfig) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, config.vocab_size, (batch_size, 4), generator=generator)
    tokens[1, 3:] = -100
    tags = (torch.rand(batch_size, config.num_labels, generator=generator) > 0.5).float()
    speakers = torch.arange(batch_size) % config.num_speakers
    if model_class in (MT2KDForCTC, MT2KDForRNNT):
        return {"labels": tokens}
    if model_class is MT2KDForAudioClassification:
        return {"labels": tags}
    if model_class is MT2KDForXVector:
        return {"labels": speakers}
    if model_class is MT2KDForMultiTask:
        return {"labels": tokens, "tagging_labels": tags, "speaker_labels": speakers}
    return {
        "whisper_targets": torch.randn(batch_size, 40, config.whisper_dim, generator=generator),
        "tagging_targets": torch.rand(batch_size, config.num_labels, generator=generator),
        "speaker_targets": torch.randn(batch_size, config.speaker_embedding_dim, generator=generator),
    }


@pytest.mark.parametrize("model_class", ALL_HEADS)
def test_loss_falls_when_overfitting_one_batch_and_every_trainable_parameter_gets_a_gradient(model_class):
    torch.manual_seed(0)
    config = tiny_config()
    model = model_class(config).train()
    features, mask = padded_batch([90, 70], seed=3)
    labels = labels_for(model_class, 2, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(12):
        optimizer.zero_grad()
        loss = model(features, attention_mask=mask, **labels).loss
        loss.backward()
        if step == 0:
            silent = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
            assert silent == []
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_the_authors_unused_layer_bypass_scale_is_frozen():
    model = MT2KDModel(tiny_config())
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(name.endswith("layers.0.bypass_scale") or ".bypass_scale" in name for name in frozen)
    assert all(name.count("bypass_scale") == 1 and ".bypass." not in name for name in frozen)


def test_eval_is_deterministic_and_training_regularisers_are_active():
    torch.manual_seed(0)
    model = MT2KDModel(tiny_config())
    features, mask = padded_batch([120, 80])
    model.eval()
    with torch.no_grad():
        first = model(features, mask, batch_count=500).last_hidden_state
        second = model(features, mask, batch_count=500).last_hidden_state
    assert torch.equal(first, second)  # no randomness and batch_count has no effect in eval
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        trained = model(features, mask, batch_count=500).last_hidden_state
    assert not torch.allclose(trained, first, atol=1e-3)


def test_multitask_losses_only_count_samples_that_carry_each_task():
    torch.manual_seed(0)
    config = tiny_config()
    model = MT2KDForMultiTask(config).eval()
    features, mask = padded_batch([90, 80, 70])
    labels = labels_for(MT2KDForMultiTask, 3, config)
    task_masks = {
        "asr_mask": torch.tensor([True, False, False]),
        "tagging_mask": torch.tensor([False, True, False]),
        "speaker_mask": torch.tensor([False, False, True]),
    }
    with torch.no_grad():
        reference = model(features, mask, **labels, **task_masks)
        scrambled = {
            "labels": labels["labels"].clone().index_fill_(0, torch.tensor([1, 2]), 7),
            "tagging_labels": labels["tagging_labels"].clone().index_fill_(0, torch.tensor([0, 2]), 1.0),
            "speaker_labels": labels["speaker_labels"].clone().index_fill_(0, torch.tensor([0, 1]), 2),
        }
        changed = model(features, mask, **scrambled, **task_masks)
        tagging_only = model(features, mask, tagging_labels=labels["tagging_labels"])
    for name in ("ctc_loss", "transducer_loss", "tagging_loss", "speaker_loss", "loss"):
        torch.testing.assert_close(getattr(changed, name), getattr(reference, name))
    assert tagging_only.ctc_loss is None and tagging_only.speaker_loss is None
    torch.testing.assert_close(tagging_only.loss, config.tagging_loss_weight * tagging_only.tagging_loss)


def test_multitask_runs_the_encoder_once_for_all_heads():
    model = MT2KDForMultiTask(tiny_config()).eval()
    calls = []
    model.mt2kd.encoder.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = model(*padded_batch([60, 50]))
    assert len(calls) == 1
    assert out.ctc_logits is not None and out.tagging_logits is not None and out.speaker_embeddings is not None


def test_whisper_targets_at_50hz_and_prestacked_give_the_same_loss():
    torch.manual_seed(0)
    config = tiny_config()
    model = MT2KDForDistillation(config).eval()
    features, mask = padded_batch([120, 120])
    teacher = torch.randn(2, 60, config.whisper_dim)
    frames = model(features, mask).whisper_prediction.shape[1]
    stacked = teacher[:, : 2 * frames].reshape(2, frames, 2 * config.whisper_dim)
    with torch.no_grad():
        at_50hz = model(features, mask, whisper_targets=teacher).whisper_loss
        prestacked = model(features, mask, whisper_targets=stacked).whisper_loss
    torch.testing.assert_close(at_50hz, prestacked)
    with pytest.raises(ValueError, match="whisper_targets must have"):
        model(features, mask, whisper_targets=torch.randn(2, 60, 3))


def test_transducer_generate_returns_tokens_and_frames_for_each_utterance():
    model = MT2KDForRNNT(tiny_config()).eval()
    features, mask = padded_batch([100, 60])
    for method in ("greedy_search", "modified_beam_search"):
        hypotheses = model.generate(features, mask, decoding_method=method)
        assert len(hypotheses) == 2
        assert all(len(h.tokens) == len(h.frames) for h in hypotheses)
    with pytest.raises(ValueError, match="decoding_method"):
        model.generate(features, mask, decoding_method="nope")


def test_bad_inputs_get_clear_errors():
    model = MT2KDModel(tiny_config())
    with pytest.raises(ValueError, match=r"\(batch, frames, 80\)"):
        model(torch.randn(1, 50, 40))
    with pytest.raises(ValueError, match="at least 9 fbank frames"):
        model(torch.randn(1, 5, 80))


def test_invalid_configs_fail_at_construction():
    with pytest.raises(ValueError, match="encoder_unmasked_dim"):
        MT2KDConfig.from_preset("mt2kd-tiny", encoder_unmasked_dim=(64, 64, 64, 64))
    with pytest.raises(ValueError, match="one value per stack"):
        MT2KDConfig.from_preset("mt2kd-tiny", encoder_dim=(32, 48))
    with pytest.raises(ValueError, match="odd"):
        MT2KDConfig.from_preset("mt2kd-tiny", cnn_module_kernel=8)
    with pytest.raises(ValueError, match="blank_id"):
        MT2KDConfig.from_preset("mt2kd-tiny", blank_id=50)
    with pytest.raises(ValueError, match="unknown MT2KD preset"):
        MT2KDConfig.from_preset("mt2kd-huge")


def test_presets_describe_the_paper_model():
    config = MT2KDConfig.from_preset("mt2kd-66m")
    assert config.inputs_to_logits_ratio == 640
    assert config.num_labels == 527 and config.id2label[0] == "Speech"
    assert config.problem_type == "multi_label_classification"
    assert (config.vocab_size, config.decoder_dim, config.joiner_dim, config.context_size) == (500, 512, 512, 2)
    assert (config.speaker_embedding_dim, config.whisper_dim, config.output_dim) == (192, 1280, 512)


def test_prestacked_whisper_targets_are_cut_or_extended_with_their_last_frame():
    torch.manual_seed(0)
    config = tiny_config()
    model = MT2KDForDistillation(config).eval()
    stacked = torch.randn(1, 3, 2 * config.whisper_dim)
    extended = model._stacked_whisper_targets(stacked, 5)
    torch.testing.assert_close(extended, torch.cat([stacked, stacked[:, -1:], stacked[:, -1:]], dim=1))
    torch.testing.assert_close(model._stacked_whisper_targets(stacked, 2), stacked[:, :2])
