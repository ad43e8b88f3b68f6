"""A model that cannot be loaded: one line naming the file and the fix, exit status 2, from the CLI and from
`load_mt2kd_pipeline` (issue 16, item 3)."""

import json
import shutil
import time

import pytest
import torch

from processing_mt2kd import MT2KDTokenizer
from processing_mt2kd.pipelines.model_source import ModelLoadError, check_model_source, load_mt2kd_pipeline
from training_mt2kd.cli.main import main

from .test_pipelines import save_tiny_mt2kd_folder


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory):
    return save_tiny_mt2kd_folder(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def recording(data_dir):
    return str(data_dir / "fsdd/recordings/0_george_0.wav")


def truncate_weights(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def edit_config(**values):
    def edit(folder):
        config = json.loads((folder / "config.json").read_text())
        config.update(values)
        (folder / "config.json").write_text(json.dumps(config))

    return edit


# name: (how the folder is broken, a part of the expected message)
BROKEN_FOLDERS = {
    "truncated weights": (truncate_weights, "model.safetensors is damaged"),
    "missing bpe.model": (lambda folder: (folder / "bpe.model").unlink(), "bpe.model is missing"),
    "missing weights": (lambda folder: (folder / "model.safetensors").unlink(), "model.safetensors is missing"),
    "edited vocab_size": (edit_config(vocab_size=45), "ctc_head.proj.bias of shape (40,)"),
    "edited num_mel_bins": (edit_config(num_mel_bins=64), "do not match the weights"),
    "missing config": (lambda folder: (folder / "config.json").unlink(), "config.json is missing"),
    "missing feature extractor": (
        lambda folder: (folder / "preprocessor_config.json").unlink(), "preprocessor_config.json is missing"
    ),
}


@pytest.fixture(params=sorted(BROKEN_FOLDERS))
def broken_folder(request, tmp_path, good_folder):
    break_folder, message = BROKEN_FOLDERS[request.param]
    folder = tmp_path / "model"
    shutil.copytree(good_folder, folder)
    break_folder(folder)
    return folder, message


def run_cli(capsys, *argv) -> tuple[int, str]:
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    assert captured.out == ""  # no report for a model that did not load
    return status, captured.err


def test_a_broken_folder_gives_one_line_and_exit_status_2(capsys, broken_folder, recording):
    folder, message = broken_folder
    status, error = run_cli(capsys, "transcribe", "--model", folder, recording)
    assert status == 2 and error.count("\n") == 1, error
    assert error.startswith("mt2kd transcribe: error: ") and message in error and str(folder) in error


def test_the_python_api_raises_the_same_one_line_error(broken_folder):
    folder, message = broken_folder
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mt2kd_pipeline("mt2kd-multitask", folder)


def test_the_tokenizer_names_a_missing_bpe_model(tmp_path, good_folder):
    shutil.copytree(good_folder, tmp_path / "model")
    (tmp_path / "model/bpe.model").unlink()
    with pytest.raises(ValueError, match="bpe.model is missing"):
        MT2KDTokenizer.from_pretrained(tmp_path / "model")


def test_tagging_does_not_need_the_tokenizer(tmp_path, good_folder):
    shutil.copytree(good_folder, tmp_path / "model")
    (tmp_path / "model/bpe.model").unlink()
    check_model_source(tmp_path / "model", "mt2kd-audio-classification")


@pytest.mark.parametrize("offline", ["1", ""])
@pytest.mark.parametrize("path", ["/no/such/mt2kd-folder", "./no-such-folder", "runs/no/such/model", "my model"])
def test_a_missing_folder_that_cannot_be_a_repo_id_fails_at_once(capsys, monkeypatch, recording, offline, path):
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    started = time.perf_counter()
    status, error = run_cli(capsys, "tag", "--model", path, recording)
    assert time.perf_counter() - started < 10
    assert status == 2 and f"model folder {path!r} does not exist" in error


def test_a_local_looking_dir_slash_name_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(ModelLoadError, match="'runs/model' does not exist"):
        check_model_source("runs/model")


def test_a_repo_id_is_not_looked_up_when_the_hub_is_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set"):
        check_model_source("someone/not-downloaded-mt2kd")


def test_a_repo_id_is_asked_once_and_an_unreachable_hub_is_said_plainly(monkeypatch):
    import huggingface_hub

    calls = []

    def unreachable(repo_id, **kwargs):
        calls.append(repo_id)
        raise ConnectionError("Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    with pytest.raises(ModelLoadError, match="the Hub could not be reached"):
        check_model_source("someone/mt2kd-model")
    assert calls == ["someone/mt2kd-model"]


def test_device_cuda_without_a_gpu_is_refused_before_loading(capsys, monkeypatch, good_folder, recording):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status, error = run_cli(capsys, "embed", "--model", good_folder, "--device", "cuda", recording)
    assert status == 2 and "torch finds no CUDA GPU" in error and "--device cpu" in error


def test_negative_window_length_is_refused_with_the_fix(capsys, good_folder, recording):
    status, error = run_cli(capsys, "tag", "--model", good_folder, "--window_length_s", "-3", recording)
    assert status == 2 and "window_length_s must be > 0" in error


# Small ones: an empty folder, a negative chunk length


def test_a_folder_without_audio_says_no_audio_files_found(capsys, tmp_path, good_folder):
    (tmp_path / "empty/sub").mkdir(parents=True)
    (tmp_path / "empty/sub/notes.txt").write_text("not audio")
    status, error = run_cli(capsys, "tag", "--model", good_folder, tmp_path / "empty")
    assert status == 2 and "no audio files found in" in error and "empty" in error and ".wav" in error


@pytest.mark.parametrize("chunk_length_s", ["-5", "nan"])
def test_a_negative_chunk_length_is_refused_with_the_fix(capsys, good_folder, recording, chunk_length_s):
    status, error = run_cli(capsys, "transcribe", "--model", good_folder, "--chunk_length_s", chunk_length_s, recording)
    assert status == 2 and "--chunk_length_s must be a number of seconds > 0" in error


def test_the_transducer_pipeline_refuses_a_negative_chunk_length(good_folder, recording):
    asr = load_mt2kd_pipeline("mt2kd-transducer-asr", good_folder)
    with pytest.raises(ValueError, match="chunk_length_s must be a number of seconds > 0"):
        asr(recording, chunk_length_s=-5)
