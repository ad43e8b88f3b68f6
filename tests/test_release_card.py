"""The model card describes the model it ships: speaker metrics under speaker verification, the data and teachers
from the folder's own training record, and its calibrated speaker threshold (issue 16, item 4)."""

import json

import pytest
import yaml
from huggingface_hub import ModelCard

from processing_mt2kd.pipelines.speaker_threshold import CalibratedThreshold, store_calibrated_threshold
from training_mt2kd.release.provenance import run_metadata, write_training_metadata
from training_mt2kd.release.release import check_model_folder, load_eval_results, render_model_card

from .test_release import EVAL_RESULTS, REPO_ID, REPO_ROOT, copy_folder, write_tiny_model_folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, data_dir):
    return write_tiny_model_folder(tmp_path_factory.mktemp("trained") / "final", data_dir)


def card_of(folder, eval_results=None) -> str:
    return render_model_card(check_model_folder(folder), REPO_ID, eval_results)


def test_speaker_metrics_are_filed_under_speaker_verification_not_audio_tagging(model_folder):
    card = ModelCard(card_of(model_folder, EVAL_RESULTS))
    tasks = {(result.metric_type, result.task_type, result.task_name) for result in card.data.eval_results}
    assert ("eer", "speaker-verification", "Speaker verification") in tasks
    assert ("min_dcf", "speaker-verification", "Speaker verification") in tasks
    assert ("map", "audio-classification", "Audio tagging") in tasks
    index = yaml.safe_load(card.content.split("---")[1])["model-index"][0]["results"]
    tagging = [entry for entry in index if entry["task"]["type"] == "audio-classification"]
    assert all(metric["type"] == "map" for entry in tagging for metric in entry["metrics"])


def test_a_folder_without_a_training_record_says_so_instead_of_claiming_the_papers_data(model_folder):
    card = card_of(model_folder)
    assert "carries no training record" in card
    assert "this checkpoint saw" in card and "How this checkpoint was trained" in card


def test_the_card_lists_the_data_and_teachers_of_the_run_config(tmp_path, model_folder):
    folder = copy_folder(model_folder, tmp_path / "stage2")
    stage1_config = yaml.safe_load((REPO_ROOT / "training/configs/mt2kd_66m_stage1.yaml").read_text())
    stage1 = copy_folder(model_folder, tmp_path / "stage1")
    write_training_metadata(stage1, run_metadata("stage1", stage1_config["data"]["train"], stage1_config["teachers"]))
    stage2_config = yaml.safe_load((REPO_ROOT / "training/configs/mt2kd_66m_stage2.yaml").read_text())
    write_training_metadata(folder, run_metadata("stage2", stage2_config["data"]["train"], init_from=stage1))
    card = card_of(folder)
    assert "MIT/ast-finetuned-audioset-10-10-0.4593" in card and "microsoft/wavlm-base-plus-sv" in card
    assert "openai/whisper-large-v3" in card and "ProgramComputer/voxceleb" in card
    assert card.index("**stage1**") < card.index("**stage2**")
    assert "no training record" not in card


def test_local_corpora_and_teachers_are_recorded_without_paths_of_this_machine(tmp_path):
    manifest = tmp_path / "deep/inside/train.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("path\n")
    metadata = run_metadata(
        "stage1", [{"name": "demo", "source": str(manifest), "task": "distill"}],
        {"speaker": {"name_or_path": str(tmp_path), "kind": "xvector"}},
    )
    assert str(tmp_path) not in json.dumps(metadata)
    assert metadata["corpora"][0]["source"] == "train.csv"


def test_the_card_reports_the_calibrated_threshold_or_its_absence(tmp_path, model_folder):
    assert "carries no calibrated threshold" in card_of(model_folder)
    folder = copy_folder(model_folder, tmp_path / "calibrated")
    store_calibrated_threshold(folder, CalibratedThreshold(0.4321, "equal_error_rate", "dev_trials.txt", 30, 60,
                                                           0.05, 0.0667))
    card = card_of(folder)
    assert "cosine **0.4321**" in card and "`dev_trials.txt`" in card and "5.00 % false accepts" in card


def test_an_evaluation_with_a_calibrated_threshold_releases_without_it_in_model_index(tmp_path, model_folder):
    threshold_entry = {"task": "speaker", "dataset": "vox", "split": "dev", "metric": "threshold", "value": 0.4}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**EVAL_RESULTS, "results": [*EVAL_RESULTS["results"], threshold_entry]}))
    card = ModelCard(card_of(model_folder, load_eval_results(path)))
    assert "threshold" not in {result.metric_type for result in card.data.eval_results}
