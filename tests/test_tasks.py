"""training_mt2kd.tasks: the task table drives corpora, collation, stage-2 inputs and heads; a new
task is one row plus its head (the worked example of docs/architecture.md, as a toy gender task)."""

import csv

import datasets
import pytest
import torch
from torch import nn

from configuration_mt2kd import IGNORE_INDEX, MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from processing_mt2kd import MT2KDFeatureExtractor
from training_mt2kd.data import (
    AudioCollator, CorpusMixture, CorpusSpec, LabelSet, SpeakerIndex, corpus_spec_from_dict, load_corpus,
)
from training_mt2kd.tasks import (
    Task,
    TaskHead,
    attach_task_heads,
    class_index_from_names,
    encode_class_names,
    forward_with_tasks,
    get_task,
    head_flag_values,
    model_inputs,
    register_task,
    task_names,
    unregister_task,
)

AN4_FILES = ["wav/fclc/an146-fclc-b.wav", "wav/fclc/an147-fclc-b.wav", "wav/fclc/an149-fclc-b.wav"]


class GenderHead(TaskHead):
    """Mean over valid frames → two logits; cross-entropy per clip."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.proj = nn.Linear(hidden_size, 2)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        weights = frame_mask.unsqueeze(-1).to(hidden_states.dtype)
        pooled = (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        return self.proj(pooled)

    def loss(self, prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(prediction, labels, ignore_index=IGNORE_INDEX, reduction="none")


GENDER = Task(
    name="gender", label_role="gender", batch_key="gender_ids", label_argument="gender_labels",
    mask_argument="gender_mask", head_flags=("use_gender",), head_attributes=("gender_head",),
    loss_weights=("gender_loss_weight",), metrics=("accuracy",), encode=encode_class_names,
    prediction_field="gender_logits", head=lambda config: GenderHead(config.output_dim),
    vocabulary_from_labels=class_index_from_names,
)


@pytest.fixture
def gender_task():
    register_task(GENDER)
    yield GENDER
    unregister_task(GENDER.name)


@pytest.fixture
def gender_manifest(tmp_path, data_dir):
    """Three AN4 clips with made-up genders (a toy label: only the plumbing is under test)."""
    path = tmp_path / "gender.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "gender"])
        for file, gender in zip(AN4_FILES, ["female", "male", "female"], strict=True):
            writer.writerow([str(data_dir / "an4" / file), gender])
    return path


@pytest.fixture(autouse=True)
def datasets_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))


def test_the_table_has_the_three_stage2_tasks_with_their_heads_and_labels():
    assert task_names() == ("asr", "tagging", "speaker")
    assert get_task("asr").head_flags == ("use_ctc", "use_transducer")
    assert get_task("tagging").label_role == "labels"
    assert get_task("speaker").metric == "eer"


def test_head_flags_follow_the_trained_tasks_and_keep_an_optional_head_off():
    assert head_flag_values({"asr"}, {"use_ctc": False}) == {
        "use_ctc": False, "use_transducer": True, "use_audio_tagging": False, "use_speaker": False,
    }
    assert head_flag_values({"tagging", "speaker"}, {})["use_speaker"]


def test_a_task_name_is_registered_once(gender_task):
    with pytest.raises(ValueError, match="already in the table"):
        register_task(gender_task)


def test_collator_encodes_each_task_with_its_vocabulary(data_dir):
    path = str(data_dir / "an4" / AN4_FILES[0])
    examples = [
        {"audio": {"bytes": None, "path": path}, "id": "a", "tasks": ("speaker",), "speaker": "fclc"},
        {"audio": {"bytes": None, "path": path}, "id": "b", "tasks": ("tagging",), "labels": "Speech"},
    ]
    batch = AudioCollator(label_set=LabelSet(["Speech"]), speaker_index=SpeakerIndex(["fclc"]))(examples)
    assert batch["speaker_ids"].tolist() == [0, IGNORE_INDEX]
    assert batch["labels"].tolist() == [[0.0], [1.0]]
    inputs = model_inputs(batch, ["speaker", "tagging"], "cpu")
    assert inputs["speaker_mask"].tolist() == [True, False]
    assert inputs["tagging_mask"].tolist() == [False, True]


def test_a_corpus_may_map_a_registered_tasks_label_role(gender_task, gender_manifest):
    with pytest.raises(ValueError, match="maps no 'gender' column"):
        CorpusSpec(name="g", source=str(gender_manifest), task="gender", columns={"audio": "path"},
                   allow_absolute_paths=True)
    spec = CorpusSpec(name="g", source=str(gender_manifest), task="gender", columns={"audio": "path", "gender": "gender"},
                      allow_absolute_paths=True)
    assert load_corpus(spec)["gender"] == ["female", "male", "female"]


def test_a_toy_task_added_as_one_row_and_a_head_trains_one_step(gender_task, gender_manifest):
    spec = CorpusSpec(name="g", source=str(gender_manifest), task="gender", columns={"audio": "path", "gender": "gender"},
                      allow_absolute_paths=True)
    mixture = CorpusMixture([(spec, load_corpus(spec))])
    vocabulary = gender_task.vocabulary_from_labels(mixture.datasets[0]["gender"])
    collator = AudioCollator(feature_extractor=MT2KDFeatureExtractor(), vocabularies={"gender": vocabulary})
    batch = collator(mixture.__getitems__([(0, 0), (0, 1), (0, 2)]))
    assert batch["gender_ids"].tolist() == [0, 1, 0]

    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(
        "mt2kd-tiny", use_ctc=False, use_transducer=False, use_audio_tagging=False, use_speaker=False,
        use_gender=True, gender_loss_weight=0.5,
    )
    model = MT2KDForMultiTask(config).eval()  # eval: no dropout, so the two losses below compare
    assert attach_task_heads(model) == []  # the model built the registered row's head itself
    assert {"gender_head.proj.weight", "gender_head.proj.bias"} <= set(model.state_dict())

    inputs = {"input_features": batch["input_features"], "attention_mask": batch["attention_mask"]}
    inputs |= model_inputs(batch, ["gender"], "cpu")
    output = forward_with_tasks(model, **inputs)
    assert output.gender_logits.shape == (3, 2)
    assert torch.allclose(output.loss, 0.5 * output.gender_loss)

    before = model.gender_head.proj.weight.detach().clone()
    output.loss.backward()
    assert model.mt2kd.encoder.embed.conv1.weight.grad.abs().sum() > 0  # the new task trains the shared encoder too
    torch.optim.SGD(model.gender_head.parameters(), lr=1e-3).step()
    assert not torch.equal(model.gender_head.proj.weight, before)
    assert forward_with_tasks(model, **inputs).loss < output.loss


def test_attach_task_heads_adds_the_head_of_a_row_registered_after_the_model_was_built():
    config = MT2KDConfig.from_preset("mt2kd-tiny", use_gender=True)
    model = MT2KDForMultiTask(config)
    assert getattr(model, "gender_head", None) is None
    register_task(GENDER)
    try:
        assert attach_task_heads(model) == ["gender"]
        assert isinstance(model.gender_head, GenderHead)
    finally:
        unregister_task(GENDER.name)
    assert getattr(MT2KDForMultiTask(config), "gender_head", None) is None  # unregistered: no builder left


def test_a_table_added_head_round_trips_through_save_and_from_pretrained(gender_task, tmp_path):
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset("mt2kd-tiny", use_gender=True, gender_loss_weight=0.5)
    model = MT2KDForMultiTask(config).eval()
    model.save_pretrained(tmp_path)
    loaded, info = MT2KDForMultiTask.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert torch.equal(loaded.gender_head.proj.weight, model.gender_head.proj.weight)
    features = torch.randn(2, 90, 80)
    with torch.no_grad():
        expected = forward_with_tasks(model, input_features=features)
        reloaded = forward_with_tasks(loaded.eval(), input_features=features)
    torch.testing.assert_close(reloaded.gender_logits, expected.gender_logits)


def test_a_corpus_entry_with_an_unknown_option_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colums'\]"):
        corpus_spec_from_dict({"source": "x.csv", "colums": {}})
    assert corpus_spec_from_dict({"source": "x.csv"}, task="distill").tasks == ("distill",)
