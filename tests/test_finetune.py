"""Stage 2 end to end: `training/finetune.py` on the real spoken digits (FSDD)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForDistillation, MT2KDForMultiTask
from processing_mt2kd import MT2KDProcessor, load_audio
from training_mt2kd.evaluation.metrics import word_error_rate
from training_mt2kd.evaluation.runner import EvaluatedModel
from training_mt2kd.recipe import finetune
from training_mt2kd.recipe.handover import carry_over_stage1

from .conftest import DATA_DIR, REPO_ROOT

CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"
FSDD = DATA_DIR / "fsdd"


def fsdd_corpus(task: str = "asr+speaker", split: str = "train") -> str:
    entry = {
        "name": "fsdd", "source": str(FSDD / "metadata.csv"), "split": split, "task": task,
        "columns": {"audio": "path", "id": "path", "text": "transcript", "speaker": "speaker",
                    "duration": "duration_s", "split": "split"},
    }
    return json.dumps([entry])


def finetune_arguments(output_dir, max_steps: int, *extra: str, task: str = "asr+speaker") -> list[str]:
    return ["--config", str(CONFIG), "--output_dir", str(output_dir), "--max_steps", str(max_steps),
            "--set", f"data.train={fsdd_corpus(task)}", *extra]


@pytest.fixture(scope="module")
def stage1_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("stage1")
    MT2KDForDistillation(MT2KDConfig.from_preset("mt2kd-tiny", num_labels=4)).save_pretrained(folder)
    return folder


def test_handover_keeps_exactly_the_encoder_tagging_and_speaker_weights(stage1_folder):
    stage1 = MT2KDForDistillation.from_pretrained(stage1_folder)
    torch.manual_seed(1)
    model = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", num_labels=4, num_speakers=6))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    report = carry_over_stage1(model, stage1)
    after, source = model.state_dict(), stage1.state_dict()
    for name in after:
        if name.startswith(("mt2kd.", "tagging_head.", "speaker_head.")):
            assert torch.equal(after[name], source[name]), name
            assert name in report.carried
        else:  # CTC, transducer and speaker classifier start fresh
            assert torch.equal(after[name], before[name]), name
            assert name in report.fresh
    assert sorted(report.dropped) == ["whisper_projection.proj.bias", "whisper_projection.proj.weight"]


def test_handover_refuses_a_stage1_model_of_another_size(stage1_folder):
    stage1 = MT2KDForDistillation.from_pretrained(stage1_folder)
    model = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", num_labels=4, encoder_dim=(32, 48, 64, 64)))
    with pytest.raises(ValueError, match="stage 2 must use the stage-1 encoder"):
        carry_over_stage1(model, stage1)


def test_finetune_from_stage1_writes_a_loadable_folder_with_processor_and_speakers(tmp_path, stage1_folder):
    final = finetune.main(finetune_arguments(tmp_path / "run", 3, "--init_from", str(stage1_folder)))
    model = MT2KDForMultiTask.from_pretrained(final)
    assert model.config.use_transducer and model.config.use_speaker and not model.config.use_audio_tagging
    speakers = json.loads((final / "speaker_index.json").read_text())["speakers"]
    assert model.config.num_speakers == len(speakers) == 6
    processor = MT2KDProcessor.from_pretrained(final)
    assert len(processor.tokenizer) == model.config.vocab_size
    handover = json.loads((tmp_path / "run" / "handover.json").read_text())
    assert "mt2kd.encoder.embed.conv1.weight" in handover["carried"]
    # The encoder started from stage 1: after 3 steps it is close to, but not equal to, stage 1.
    stage1 = load_file(stage1_folder / "model.safetensors")
    tuned = model.state_dict()["mt2kd.encoder.embed.conv1.weight"]
    assert not torch.equal(tuned, stage1["mt2kd.encoder.embed.conv1.weight"])


def test_single_task_baseline_builds_only_its_heads(tmp_path):
    final = finetune.main(finetune_arguments(tmp_path / "asr_only", 2, task="asr"))
    config = MT2KDConfig.from_pretrained(final)
    assert config.use_transducer and not config.use_speaker and not config.use_audio_tagging
    # The folder goes straight into evaluate.py, the ONNX export and the release, which read the feature
    # extractor from preprocessor_config.json (a processor alone writes only processor_config.json).
    assert (final / "preprocessor_config.json").is_file()
    evaluated = EvaluatedModel.from_folder(final)
    assert evaluated.tokenizer is not None and evaluated.tasks == ("asr",)


def test_finetune_resume_ends_with_the_same_weights(tmp_path):
    every_2 = ("--set", "training.save_every_steps=2", "--set", "training.keep_checkpoints=4")
    finetune.main(finetune_arguments(tmp_path / "straight", 4, *every_2))
    finetune.main(finetune_arguments(
        tmp_path / "resumed", 4, *every_2, "--resume_from", str(tmp_path / "straight" / "checkpoints" / "checkpoint-2"),
    ))
    straight = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def transcribe_and_identify(folder, examples: list[dict]) -> dict[str, float]:
    """WER with CTC greedy and transducer greedy decoding, and speaker-identification accuracy."""
    model = MT2KDForMultiTask.from_pretrained(folder).eval()
    processor = MT2KDProcessor.from_pretrained(folder)
    speakers = json.loads((folder / "speaker_index.json").read_text())["speakers"]
    ctc_texts, transducer_texts, correct = [], [], 0
    for start in range(0, len(examples), 32):
        chunk = examples[start : start + 32]
        audio = [load_audio(FSDD / example["path"])[0] for example in chunk]
        inputs = processor(audio=audio, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            out = model(inputs["input_features"], inputs["attention_mask"])
            hypotheses = model.decode_transducer(out.last_hidden_state, out.attention_mask)
        ctc_texts += processor.tokenizer.batch_decode(out.ctc_logits.argmax(-1))
        transducer_texts += [processor.tokenizer.decode(h.tokens, group_tokens=False) for h in hypotheses]
        correct += sum(
            speakers[int(k)] == example["speaker"] for k, example in zip(out.speaker_logits.argmax(-1), chunk)
        )
    references = [example["transcript"] for example in examples]
    return {
        "ctc_wer": word_error_rate(references, ctc_texts).wer,
        "transducer_wer": word_error_rate(references, transducer_texts).wer,
        "speaker_accuracy": correct / len(examples),
    }


@pytest.mark.slow
def test_a_few_minutes_of_finetuning_beats_chance_on_the_fsdd_test_split(tmp_path):
    import csv

    final = finetune.main(finetune_arguments(tmp_path / "run", 400))
    test = [row for row in csv.DictReader(open(FSDD / "metadata.csv")) if row["split"] == "test"][::5]
    scores = transcribe_and_identify(final, test)
    # Chance: one of ten digit words (WER >= 0.9); one of six speakers (accuracy 1/6). Measured
    # with this config (400 steps, 5-11 min on 2 busy cores): transducer WER 0.08, CTC WER 0.22,
    # speaker accuracy 0.98; the bounds leave room for run-to-run and machine differences.
    assert scores["transducer_wer"] < 0.3, scores
    assert scores["ctc_wer"] < 0.5, scores
    assert scores["speaker_accuracy"] > 0.7, scores
