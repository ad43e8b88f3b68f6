"""save_pretrained / from_pretrained through safetensors, Auto classes, and remote code."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForAudioXVector, AutoModelForCTC

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForCTC, MT2KDForMultiTask
from training_mt2kd.release.remote_code import save_with_remote_code


def tiny_multitask() -> MT2KDForMultiTask:
    torch.manual_seed(0)
    return MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", num_labels=4)).eval()


def test_round_trip_through_safetensors_reproduces_outputs(tmp_path):
    model = tiny_multitask()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = MT2KDForMultiTask.from_pretrained(tmp_path).eval()
    features = torch.randn(2, 90, 80)
    with torch.no_grad():
        expected, actual = model(features), reloaded(features)
    for name in ("ctc_logits", "tagging_logits", "speaker_embeddings"):
        torch.testing.assert_close(getattr(actual, name), getattr(expected, name), rtol=0, atol=0)


@pytest.mark.parametrize(
    "auto_class, expected_class_name",
    [
        (AutoModel, "MT2KDModel"),
        (AutoModelForCTC, "MT2KDForCTC"),
        (AutoModelForAudioClassification, "MT2KDForAudioClassification"),
        (AutoModelForAudioXVector, "MT2KDForXVector"),
    ],
)
def test_auto_classes_load_each_head_from_a_multitask_folder(tmp_path, auto_class, expected_class_name):
    model = tiny_multitask()
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)).__name__ == "MT2KDConfig"
    loaded = auto_class.from_pretrained(tmp_path)
    assert type(loaded).__name__ == expected_class_name
    # The shared encoder weights come from the multi-task checkpoint, not a fresh init.
    torch.testing.assert_close(
        loaded.state_dict()[next(k for k in loaded.state_dict() if k.endswith("embed.conv1.weight"))],
        model.mt2kd.encoder.embed.conv1.weight,
    )


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys, json, importlib.abc

    class BlockProject(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"configuration_mt2kd", "modeling_mt2kd", "processing_mt2kd", "training_mt2kd"}:
                raise ImportError(f"the MT2KD package must not be used here: {name}")

    sys.meta_path.insert(0, BlockProject())
    import torch
    from transformers import AutoModel, AutoModelForCTC, AutoModelForAudioXVector

    folder = sys.argv[1]
    features = torch.load(sys.argv[2])
    results = {}
    with torch.no_grad():
        results["encoder"] = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()(features).last_hidden_state.sum().item()
        results["ctc"] = AutoModelForCTC.from_pretrained(folder, trust_remote_code=True).eval()(features).logits.sum().item()
        results["xvector"] = AutoModelForAudioXVector.from_pretrained(folder, trust_remote_code=True).eval()(features).embeddings.sum().item()
    print(json.dumps(results))
    """
)


def test_remote_code_loads_in_a_fresh_process_without_the_package(tmp_path):
    model = tiny_multitask()
    folder = tmp_path / "model"
    save_with_remote_code(model, folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCTC"] == "modeling_mt2kd.MT2KDForCTC"
    features = torch.randn(1, 80, 80)
    torch.save(features, tmp_path / "features.pt")
    (tmp_path / "remote.py").write_text(REMOTE_SCRIPT)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "remote.py"), str(folder), str(tmp_path / "features.pt")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    with torch.no_grad():
        assert remote["encoder"] == pytest.approx(model.mt2kd(features).last_hidden_state.sum().item(), rel=1e-5)
        assert remote["xvector"] == pytest.approx(model(features).speaker_embeddings.sum().item(), rel=1e-5)
    ctc = MT2KDForCTC.from_pretrained(folder).eval()
    with torch.no_grad():
        assert remote["ctc"] == pytest.approx(ctc(features).logits.sum().item(), rel=1e-5)


def test_remote_code_is_not_run_without_trust_remote_code(tmp_path):
    """A folder whose config names remote code is refused unless the user trusts it (checked in a
    process where the package is not registered, so the remote code would be the only way)."""
    save_with_remote_code(tiny_multitask(), tmp_path / "model")
    script = REMOTE_SCRIPT.replace("trust_remote_code=True", "trust_remote_code=False")
    (tmp_path / "remote.py").write_text(script)
    torch.save(torch.randn(1, 80, 80), tmp_path / "features.pt")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "remote.py"), str(tmp_path / "model"), str(tmp_path / "features.pt")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "trust_remote_code" in result.stderr
