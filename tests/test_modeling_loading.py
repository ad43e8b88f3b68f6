"""Loading MT2KD folders: the encoder or one head out of a multi-task folder without a report of the other heads'
weights (real mismatches still reported), and a clear, immediate error for a preset name that is not a folder."""

import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
import socket

import huggingface_hub
import transformers
from transformers import AutoModel
from transformers.utils import logging

import modeling_mt2kd
from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForCTC, MT2KDForMultiTask, MT2KDModel
from modeling_mt2kd.modeling_mt2kd import HEAD_MODULE_NAMES


@pytest.fixture(scope="module")
def multitask_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("multitask")
    torch.manual_seed(0)
    MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny")).save_pretrained(folder)
    return folder


@pytest.fixture()
def load_log(caplog):
    """transformers' log records (its loggers do not propagate by default)."""
    logging.enable_propagation()
    logging.set_verbosity_warning()
    yield caplog
    logging.disable_propagation()


def test_encoder_loads_from_a_multitask_folder_without_reporting_the_heads(multitask_folder, load_log):
    model = AutoModel.from_pretrained(multitask_folder)

    assert type(model) is MT2KDModel
    assert "UNEXPECTED" not in load_log.text and "LOAD REPORT" not in load_log.text


def test_one_head_loads_from_a_multitask_folder_without_reporting_the_others(multitask_folder, load_log):
    MT2KDForCTC.from_pretrained(multitask_folder)

    assert "LOAD REPORT" not in load_log.text


def test_a_real_unexpected_key_is_still_reported(multitask_folder, tmp_path, load_log):
    for path in multitask_folder.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    weights = load_file(tmp_path / "model.safetensors")
    save_file({**weights, "stray_module.weight": torch.zeros(3)}, tmp_path / "model.safetensors",
              metadata={"format": "pt"})

    AutoModel.from_pretrained(tmp_path)

    assert "stray_module.weight" in load_log.text and "UNEXPECTED" in load_log.text
    assert "ctc_head" not in load_log.text


def test_every_head_module_of_every_model_class_is_ignored_by_the_encoder():
    config = MT2KDConfig.from_preset("mt2kd-tiny")
    for auto_class, model_class in modeling_mt2kd.registration.AUTO_MODEL_CLASSES.items():
        heads = {name for name, _ in model_class(config).named_children()} - {"mt2kd", "encoder"}
        assert heads <= set(HEAD_MODULE_NAMES), (auto_class, heads - set(HEAD_MODULE_NAMES))


def test_a_preset_name_that_is_not_a_folder_fails_fast_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    with pytest.raises(OSError, match=r"(?s)preset.*convert_icefall.*MT2KDConfig.from_preset\('mt2kd-66m'\)"):
        MT2KDModel.from_pretrained("mt2kd-66m")
    assert time.monotonic() - start < 1.0  # no Hub retries (23 s offline before)


def test_a_folder_named_like_a_preset_loads(multitask_folder, tmp_path, monkeypatch):
    (tmp_path / "mt2kd-tiny").symlink_to(multitask_folder, target_is_directory=True)
    monkeypatch.chdir(tmp_path)

    assert type(MT2KDForMultiTask.from_pretrained("mt2kd-tiny")) is MT2KDForMultiTask


@pytest.fixture()
def no_network(monkeypatch):
    """No network: every name lookup and connection (whatever HTTP library huggingface_hub uses) fails and is
    recorded."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE=1", "online-without-network"])
@pytest.mark.parametrize("auto_class", ["AutoConfig", *modeling_mt2kd.registration.AUTO_MODEL_CLASSES])
def test_auto_classes_refuse_a_preset_name_at_once_without_asking_the_hub(
    auto_class, offline, tmp_path, monkeypatch, no_network
):
    # Before: transformers asked the Hub for a repository "mt2kd-66m" first (~28 s of retries without a network,
    # then a generic OSError); the MT2KD classes' own from_pretrained already failed fast.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    start = time.monotonic()
    with pytest.raises(OSError, match=r"(?s)preset.*convert_icefall.*MT2KDConfig.from_preset\('mt2kd-66m'\)"):
        getattr(transformers, auto_class).from_pretrained("mt2kd-66m")
    assert time.monotonic() - start < 1.0
    assert no_network == []


def test_auto_classes_still_load_a_local_folder_named_like_a_preset_and_ask_the_hub_for_a_repo_id(
    multitask_folder, tmp_path, monkeypatch, no_network
):
    (tmp_path / "mt2kd-tiny").symlink_to(multitask_folder, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    assert type(AutoModel.from_pretrained("mt2kd-tiny")) is MT2KDModel
    assert transformers.AutoConfig.from_pretrained(multitask_folder).model_type == "mt2kd"
    assert no_network == []
    asked = []

    def hub_download(repo_id, filename, **kwargs):  # the Hub, answering at once that it cannot be reached
        asked.append((repo_id, filename))
        raise OSError("the Hub cannot be reached in this test")

    monkeypatch.setattr(transformers.utils.hub, "hf_hub_download", hub_download)
    with pytest.raises(OSError):
        transformers.AutoConfig.from_pretrained("some-user/mt2kd-66m", cache_dir=tmp_path / "cache")
    assert asked == [("some-user/mt2kd-66m", "config.json")]  # a Hub id still goes to the Hub


def test_registration_wraps_the_auto_classes_once():
    modeling_mt2kd.register_auto_classes()
    modeling_mt2kd.register_auto_classes()

    wrapped = transformers.AutoModel.from_pretrained.__func__
    assert wrapped.refuses_missing_presets and not hasattr(wrapped.__wrapped__, "refuses_missing_presets")
