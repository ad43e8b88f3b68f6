"""Release assembly without a network: folder checks, the evaluation JSON, the model card, the release
folder and its remote-code bundle, and the CLI's refusals."""

import ast
import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from modeling_mt2kd.convert_icefall import main as convert_icefall
from processing_mt2kd import MT2KDFeatureExtractor, MT2KDProcessor, MT2KDTokenizer, train_bpe_tokenizer
from transformers import AutoModel
from training_mt2kd.release.release import (
    ReleaseError,
    assemble_release,
    check_model_folder,
    load_eval_results,
    render_model_card,
    reported_metrics,
    task_decodings,
)
from training_mt2kd.tasks import Task, encode_class_names, register_task, unregister_task

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_ID = "mt2kd-tests/tiny-release"
EVAL_RESULTS = {
    "model": "tiny",
    "results": [
        {
            "task": "asr",
            "dataset": "openslr/librispeech_asr",
            "dataset_config": "clean",
            "split": "test",
            "decoding": "modified_beam_search",
            "metric": "wer",
            "value": 2.5,
            "num_examples": 3,
        },
        {
            "task": "asr",
            "dataset": "openslr/librispeech_asr",
            "dataset_config": "other",
            "split": "test",
            "decoding": "modified_beam_search",
            "metric": "wer",
            "value": 5.125,
            "num_examples": 3,
        },
        {
            "task": "tagging",
            "dataset": "agkphysics/AudioSet",
            "dataset_config": "balanced",
            "split": "test",
            "metric": "map",
            "value": 41.75,
            "num_examples": 4,
        },
        {
            "task": "speaker",
            "dataset": "ProgramComputer/voxceleb",
            "dataset_config": "vox1-O-cleaned",
            "split": "test",
            "metric": "eer",
            "value": 1.25,
            "num_examples": 6,
        },
        {
            "task": "speaker",
            "dataset": "ProgramComputer/voxceleb",
            "dataset_config": "vox1-O-cleaned",
            "split": "test",
            "metric": "min_dcf",
            "p_target": 0.01,
            "value": 0.125,
            "num_examples": 6,
        },
    ],
}


def train_an4_tokenizer(folder: Path, data_dir: Path, vocab_size: int = 50) -> MT2KDTokenizer:
    """A BPE tokenizer (folder/bpe.model) trained on AN4's transcripts."""
    with open(data_dir / "an4" / "metadata.csv", newline="") as file:
        transcripts = [row["transcript"].upper() for row in csv.DictReader(file)]
    return train_bpe_tokenizer(transcripts, folder, vocab_size=vocab_size)


def write_tiny_model_folder(folder: Path, data_dir: Path, vocab_size: int = 50) -> Path:
    """A tiny multi-task model with its processor, as a training run saves it."""
    tokenizer = train_an4_tokenizer(folder.parent / f"{folder.name}-bpe", data_dir, vocab_size)
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset("mt2kd-tiny", id2label={0: "Speech", 1: "Music", 2: "Dog", 3: "Silence"})
    MT2KDForMultiTask(config).save_pretrained(folder)
    MT2KDProcessor(MT2KDFeatureExtractor(), tokenizer).save_pretrained(folder)
    return folder


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, data_dir) -> Path:
    return write_tiny_model_folder(tmp_path_factory.mktemp("trained") / "final", data_dir)


@pytest.fixture(scope="module")
def checked(model_folder):
    return check_model_folder(model_folder)


@pytest.fixture
def eval_json(tmp_path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(EVAL_RESULTS))
    return path


def copy_folder(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


# Folder checks


def test_check_accepts_a_complete_folder(checked):
    assert checked.architecture == "MT2KDForMultiTask"
    assert checked.config.vocab_size == len(checked.processor.tokenizer) == 50
    assert checked.num_parameters > 0


def test_check_refuses_a_folder_without_processor(model_folder, tmp_path):
    folder = copy_folder(model_folder, tmp_path / "model")
    for name in ("processor_config.json", "tokenizer_config.json", "bpe.model"):
        (folder / name).unlink()
    with pytest.raises(ReleaseError, match="no loadable processor.*MT2KDProcessor"):
        check_model_folder(folder)


def test_check_refuses_a_tokenizer_of_another_size(model_folder, tmp_path, data_dir):
    folder = write_tiny_model_folder(tmp_path / "model", data_dir, vocab_size=40)
    with pytest.raises(ReleaseError, match="40 pieces.*vocab_size=50"):
        check_model_folder(folder)


def test_check_refuses_a_folder_without_weights(model_folder, tmp_path):
    folder = copy_folder(model_folder, tmp_path / "model")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ReleaseError, match="no model.safetensors"):
        check_model_folder(folder)


def test_check_refuses_another_model_type(model_folder, tmp_path):
    folder = copy_folder(model_folder, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "wav2vec2"}))
    with pytest.raises(ReleaseError, match="model_type='wav2vec2'; expected 'mt2kd'"):
        check_model_folder(folder)


def test_check_refuses_weights_of_another_architecture(model_folder, tmp_path):
    folder = copy_folder(model_folder, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["MT2KDForDistillation"]}))
    with pytest.raises(ReleaseError, match="do not match MT2KDForDistillation"):
        check_model_folder(folder)


# Evaluation JSON


def test_eval_results_are_read_as_written(eval_json):
    assert load_eval_results(eval_json) == EVAL_RESULTS


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task": "diarisation"}, "task='diarisation'"),
        ({"metric": "cer"}, "metric='cer'"),
        ({"value": "2.5"}, "value='2.5'"),
        ({"value": float("nan")}, "value=nan"),
        ({"decoding": "beam"}, "decoding='beam'"),
        ({"split": ""}, "split=''"),
    ],
)
def test_eval_results_with_a_bad_entry_are_refused_naming_it(tmp_path, change, message):
    results = {"results": [{**EVAL_RESULTS["results"][0], **change}]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(ReleaseError, match=rf"results\[0\] has {message}"):
        load_eval_results(tmp_path / "results.json")


def test_eval_results_of_a_task_table_row_are_read_with_its_metrics(tmp_path):
    row = Task(
        name="gender", label_role="gender", batch_key="gender_ids", label_argument="gender_labels",
        mask_argument="gender_mask", head_flags=("use_gender",), head_attributes=("gender_head",),
        loss_weights=(), metrics=("accuracy",), encode=encode_class_names,
    )
    result = {"task": "gender", "dataset": "an4", "split": "test", "metric": "accuracy", "value": 90.0}
    (tmp_path / "results.json").write_text(json.dumps({"results": [result]}))
    register_task(row)
    try:
        assert load_eval_results(tmp_path / "results.json")["results"] == [result]
        assert reported_metrics("speaker") == ("eer", "min_dcf", "threshold")
        assert task_decodings("asr") == ("ctc_greedy", "greedy_search", "modified_beam_search")
    finally:
        unregister_task("gender")
    with pytest.raises(ReleaseError, match="task='gender'"):
        load_eval_results(tmp_path / "results.json")


# Model card


def test_card_metadata_parses_and_its_metrics_equal_the_eval_json(checked):
    card = ModelCard(render_model_card(checked, REPO_ID, EVAL_RESULTS))

    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "automatic-speech-recognition"
    assert card.data.datasets == ["openslr/librispeech_asr", "agkphysics/AudioSet", "ProgramComputer/voxceleb"]
    published = [
        (r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type, r.metric_value)
        for r in card.data.eval_results
    ]
    expected = [
        (r["dataset"], r["dataset_config"], r["split"], r["metric"], r["value"]) for r in EVAL_RESULTS["results"]
    ]
    assert sorted(published) == sorted(expected)
    row = "| asr | openslr/librispeech_asr | clean | test | modified_beam_search | WER (modified_beam_search) |"
    assert f"{row} 2.50 % | 3 |" in card.text


def test_card_has_only_the_metrics_present_in_the_eval_json(checked):
    only_asr = {"results": EVAL_RESULTS["results"][:1]}
    card = ModelCard(render_model_card(checked, REPO_ID, only_asr))
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("wer", 2.5)]
    assert "agkphysics/AudioSet" not in card.content


def test_card_without_eval_json_has_no_metrics(checked):
    card = ModelCard(render_model_card(checked, REPO_ID))
    assert card.data.eval_results is None
    assert "model-index" not in card.content
    assert "## Evaluation" not in card.text
    assert f'model="{REPO_ID}"' in card.text


# Release folder


def test_release_folder_has_weights_front_end_remote_code_and_card(model_folder, checked, tmp_path):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, EVAL_RESULTS, checked=checked)

    assert (release / "model.safetensors").read_bytes() == (model_folder / "model.safetensors").read_bytes()
    assert (release / "bpe.model").read_bytes() == (model_folder / "bpe.model").read_bytes()
    config = json.loads((release / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCTC"] == "modeling_mt2kd.MT2KDForCTC"
    assert "custom_pipelines" in config
    processor_config = json.loads((release / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_mt2kd.MT2KDProcessor"}
    assert processor_config["feature_extractor"]["auto_map"] == {
        "AutoFeatureExtractor": "feature_extraction_mt2kd.MT2KDFeatureExtractor"
    }
    assert json.loads((release / "preprocessor_config.json").read_text())["auto_map"] == {
        "AutoFeatureExtractor": "feature_extraction_mt2kd.MT2KDFeatureExtractor"
    }
    assert json.loads((release / "tokenizer_config.json").read_text())["auto_map"] == {
        "AutoTokenizer": ["tokenization_mt2kd.MT2KDTokenizer", None]
    }
    for module in (
        "configuration_mt2kd",
        "modeling_mt2kd",
        "feature_extraction_mt2kd",
        "tokenization_mt2kd",
        "processing_mt2kd",
    ):
        assert (release / f"{module}.py").is_file()
    assert ModelCard.load(release / "README.md").data.eval_results


def test_bundle_holds_only_load_time_code(model_folder, checked, tmp_path):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    python_files = {path.name for path in release.glob("*.py")}
    for not_needed in ("registration.py", "convert_icefall.py", "remote_code.py", "corpus.py", "collate.py", "wer.py"):
        assert not_needed not in python_files
    project = {"configuration_mt2kd", "modeling_mt2kd", "processing_mt2kd", "training_mt2kd"}
    for path in release.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 1 or node.module.split(".")[0] not in project, (path.name, node.module)
                assert node.level in (0, 1), (path.name, node.module)  # flat: single-dot relative imports only
            if isinstance(node, ast.Import):
                assert not {alias.name.split(".")[0] for alias in node.names} & project, path.name


def test_assembly_never_modifies_the_model_folder(model_folder, checked, tmp_path):
    before = folder_digest(model_folder)
    assemble_release(model_folder, tmp_path / "release", REPO_ID, EVAL_RESULTS, checked=checked)
    assert folder_digest(model_folder) == before


def test_assembly_is_deterministic_and_replaces_an_earlier_release(model_folder, checked, tmp_path):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, EVAL_RESULTS, checked=checked)
    first = folder_digest(release)
    (release / "stale_module.py").write_text("# left by an older release\n")
    assemble_release(model_folder, release, REPO_ID, EVAL_RESULTS, checked=checked)
    assert folder_digest(release) == first


def test_assembly_refuses_a_folder_holding_other_files(model_folder, checked, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(ReleaseError, match=r"holds \['todo.txt'\]"):
        assemble_release(model_folder, tmp_path / "notes", REPO_ID, checked=checked)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_assembly_refuses_to_write_into_the_model_folder(model_folder, checked):
    with pytest.raises(ReleaseError, match="overlaps the model folder"):
        assemble_release(model_folder, model_folder / "release", REPO_ID, checked=checked)


def test_authors_checkpoint_becomes_a_release_by_the_documented_recipe(tmp_path, fixtures_dir, data_dir):
    """docs/release.md, steps 2-4, on the tiny parity checkpoint of the authors' code (vocabulary of 50 pieces)."""
    fixture = fixtures_dir / "icefall_parity_tiny"
    folder = tmp_path / "mt2kd-tiny"
    convert_icefall(
        [
            "--checkpoint",
            str(fixture / "state_dict.safetensors"),
            "--config",
            str(fixture / "README.json"),
            "--output",
            str(folder),
        ]
    )
    authors_bpe_model = train_an4_tokenizer(tmp_path / "lang_bpe", data_dir).vocab_file  # stands in for theirs
    MT2KDProcessor(MT2KDFeatureExtractor(), MT2KDTokenizer(authors_bpe_model)).save_pretrained(folder)

    assert type(AutoModel.from_pretrained(folder)).__name__ == "MT2KDModel"
    release = assemble_release(folder, tmp_path / "mt2kd-tiny-release", "you/mt2kd-tiny")
    assert json.loads((release / "config.json").read_text())["architectures"] == ["MT2KDForMultiTask"]
    assert not (release / "conversion_report.json").exists()


# CLI


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "hub_upload.py"), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_cli_dry_run_writes_only_the_release_folder(model_folder, tmp_path, eval_json):
    before = folder_digest(model_folder)
    result = run_cli(
        str(model_folder),
        "--repo-id",
        REPO_ID,
        "--dry-run",
        "--eval-results",
        str(eval_json),
        "--output-dir",
        str(tmp_path / "release"),
        env={"HF_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing uploaded" in result.stdout
    assert (tmp_path / "release" / "README.md").is_file()
    assert folder_digest(model_folder) == before


def test_cli_without_a_token_explains_how_to_get_one(model_folder, tmp_path):
    env = {
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_TOKEN": "",
        "HUGGING_FACE_HUB_TOKEN": "",
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    result = run_cli(str(model_folder), "--repo-id", REPO_ID, env=env)
    assert result.returncode == 1
    assert "no Hugging Face token: set HF_TOKEN" in result.stderr
    assert "hf auth login" in result.stderr


def test_cli_refuses_a_repo_id_without_namespace(model_folder):
    result = run_cli(str(model_folder), "--repo-id", "tiny", "--dry-run")
    assert result.returncode == 2
    assert "needs a namespace" in result.stderr
