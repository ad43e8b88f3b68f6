"""training_mt2kd.yaml_config: the one YAML reader of run configurations, evaluation configs and demo plans."""

import pytest

from training_mt2kd.yaml_config import apply_override, expand_environment, read_config


def test_base_file_is_merged_key_by_key_under_the_file(tmp_path):
    (tmp_path / "base.yaml").write_text("training: {max_steps: 10, seed: 1}\ndata: {num_workers: 2}\n")
    (tmp_path / "run.yaml").write_text("base: base.yaml\ntraining: {max_steps: 20}\n")
    assert read_config(tmp_path / "run.yaml") == {"training": {"max_steps": 20, "seed": 1}, "data": {"num_workers": 2}}


def test_files_that_include_each_other_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="include each other in a loop"):
        read_config(tmp_path / "a.yaml")


def test_override_sets_a_nested_option_parsed_as_yaml():
    values = {"run": {"optim": {"lr": 0.1}}}
    apply_override(values, "run.optim.lr=0.03")
    apply_override(values, "steps.stage2=100")
    assert values == {"run": {"optim": {"lr": 0.03}}, "steps": {"stage2": 100}}
    with pytest.raises(ValueError, match="section.option=value"):
        apply_override(values, "lr=0.1")


def test_environment_references_expand_with_defaults(monkeypatch):
    monkeypatch.setenv("MT2KD_TEST_DIR", "/data")
    monkeypatch.delenv("MT2KD_UNSET", raising=False)
    assert expand_environment("${MT2KD_TEST_DIR}/an4:${MT2KD_UNSET:-x}", "test") == "/data/an4:x"
    with pytest.raises(ValueError, match="MT2KD_UNSET is not set"):
        expand_environment("${MT2KD_UNSET}", "test")
