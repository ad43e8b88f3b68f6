"""The icefall checkpoint converter as a command and on the checkpoint formats the authors ship."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file

from modeling_mt2kd import MT2KDForDistillation, MT2KDForMultiTask
from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd.convert_icefall import convert_icefall_checkpoint, load_checkpoint, load_config, main

from .conftest import FIXTURES_DIR

FIXTURE = FIXTURES_DIR / "icefall_parity_tiny"


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURE / "state_dict.safetensors"))


def test_command_writes_both_stages_and_a_report(tmp_path):
    main([
        "--checkpoint", str(FIXTURE / "state_dict.safetensors"),
        "--stage1-checkpoint", str(FIXTURE / "state_dict_stage1_only.safetensors"),
        "--config", str(FIXTURE / "README.json"),
        "--output", str(tmp_path / "out"),
    ])
    stage2 = MT2KDForMultiTask.from_pretrained(tmp_path / "out")
    stage1 = MT2KDForDistillation.from_pretrained(tmp_path / "out" / "stage1")
    assert stage2.config.num_speakers == 11 and stage2.config.use_ctc
    assert stage1.config.whisper_dim == 64
    report = json.loads((tmp_path / "out" / "conversion_report.json").read_text())
    assert set(report["dropped"]) == {"beats_decoder.1.weight", "beats_decoder.1.bias"}


@pytest.mark.parametrize("wrapped", [True, False])
def test_pt_checkpoints_with_or_without_the_model_key_convert_identically(tmp_path, reference_state, wrapped):
    path = tmp_path / "epoch-30.pt"
    torch.save({"model": reference_state, "epoch": 30} if wrapped else reference_state, path)
    model, _, _ = convert_icefall_checkpoint(path, FIXTURE / "README.json")
    expected, _, _ = convert_icefall_checkpoint(FIXTURE / "state_dict.safetensors", FIXTURE / "README.json")
    for name, tensor in expected.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"model": Payload()}, handle)
    with pytest.raises(ValueError, match="evil.pt is not a readable checkpoint") as error:
        load_checkpoint(path)
    assert "weights_only" not in str(error.value)


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage" + bytes(range(256)), b"PK\x03\x04truncated zip"])
def test_a_garbage_checkpoint_gives_one_line_without_advising_weights_only_false(tmp_path, capsys, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(path), "--output", str(tmp_path / "out")])
    message = capsys.readouterr().err
    assert exit_info.value.code == 2 and message.count("\n") == 1
    assert "garbage.pt is not a readable checkpoint" in message and "weights_only" not in message


def test_a_config_that_does_not_match_the_checkpoint_names_the_key(reference_state):
    with pytest.raises(ValueError, match=r"shape mismatch for \S+ → \S+: checkpoint .* does --config describe"):
        convert_icefall_checkpoint(reference_state, "mt2kd-66m")


def test_an_incomplete_checkpoint_is_refused(reference_state):
    partial = {k: v for k, v in reference_state.items() if not k.startswith("joiner.")}
    with pytest.raises(ValueError, match="lacks"):
        convert_icefall_checkpoint(partial, FIXTURE / "README.json")


def test_unknown_keys_are_reported_not_silently_ignored(reference_state):
    extra = {**reference_state, "some_new_module.weight": torch.zeros(3)}
    _, _, report = convert_icefall_checkpoint(extra, FIXTURE / "README.json")
    assert report.dropped["some_new_module.weight"] == "no MT2KD counterpart"


def test_config_option_reads_presets_and_config_json_through_the_preset_resolver(tmp_path):
    assert load_config("mt2kd-tiny").to_dict() == MT2KDConfig.from_preset("mt2kd-tiny").to_dict()
    MT2KDConfig.from_preset("mt2kd-tiny", num_speakers=5).save_pretrained(tmp_path)
    assert load_config(tmp_path / "config.json").num_speakers == 5
    with pytest.raises(ValueError, match="'mt2kd-huge' is neither an MT2KD preset"):
        load_config("mt2kd-huge")
