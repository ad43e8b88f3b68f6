"""training_mt2kd.evaluation.config: the evaluation YAML, its variables, and errors naming the key and the fix."""

import pytest

from training_mt2kd.evaluation.config import evaluation_config_from_dict, load_evaluation_config

from .evaluation_helpers import (
    datasets_cache_in_tmp,
    CONFIGS_DIR,
)


# --- configuration -----------------------------------------------------------------------------------


def test_tiny_config_resolves_its_data_through_the_shared_dir_variable(monkeypatch, data_dir):
    monkeypatch.setenv("MT2KD_SHARED_DIR", str(data_dir.parent))
    config = load_evaluation_config(CONFIGS_DIR / "eval_tiny.yaml")
    assert [spec.task for spec in config.evaluations] == ["asr", "tagging", "speaker"]
    assert config.evaluations[0].source == str(data_dir / "an4" / "metadata.csv")
    assert config.evaluations[0].decoding == ["ctc_greedy", "greedy_search", "modified_beam_search"]


def test_paper_config_names_the_hub_sets_and_needs_the_voxceleb_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("VOXCELEB1_DIR", raising=False)
    with pytest.raises(ValueError, match="VOXCELEB1_DIR is not set"):
        load_evaluation_config(CONFIGS_DIR / "eval_paper.yaml")

    (tmp_path / "wav").mkdir()
    (tmp_path / "veri_test2.txt").write_text("1 id10270/a/00001.wav id10270/b/00002.wav\n")
    monkeypatch.setenv("VOXCELEB1_DIR", str(tmp_path))
    config = load_evaluation_config(CONFIGS_DIR / "eval_paper.yaml")
    assert [(spec.task, spec.dataset, spec.dataset_config, spec.split) for spec in config.evaluations] == [
        ("asr", "openslr/librispeech_asr", "clean", "test"),
        ("asr", "openslr/librispeech_asr", "other", "test"),
        ("tagging", "agkphysics/AudioSet", "balanced", "test"),
        ("speaker", "ProgramComputer/voxceleb", "vox1-O-cleaned", "test"),
    ]
    assert config.evaluations[3].trials == str(tmp_path / "veri_test2.txt")


@pytest.mark.parametrize(
    "entry, error, message",
    [
        (
            {"task": "translation", "dataset": "x"},
            ValueError,
            r"task 'translation' is not one of \['asr', 'tagging', 'speaker'\]",
        ),
        (
            {"task": "asr", "dataset": "an4", "source": "missing.csv"},
            FileNotFoundError,
            r"evaluations\[0\]\.source: .*missing\.csv does not exist",
        ),
        (
            {"task": "asr", "dataset": "x", "decoding": ["beam"]},
            ValueError,
            r"decoding: \['beam'\] must be a list drawn from",
        ),
        ({"task": "asr", "dataset": "x", "trials": "t.txt"}, ValueError, r"unknown keys \['trials'\]"),
        ({"task": "tagging"}, ValueError, "'dataset' .* is required"),
        ({"task": "speaker", "dataset": "x", "p_targets": [5]}, ValueError, r"p_targets must be .* in \(0, 1\)"),
        ({"task": "asr", "dataset": "x", "columns": {"audio": "path"}}, ValueError, "maps no 'text' column"),
    ],
)
def test_bad_entries_are_rejected_with_the_key_and_the_fix(tmp_path, entry, error, message):
    with pytest.raises(error, match=message):
        evaluation_config_from_dict({"evaluations": [entry]}, tmp_path, where="eval.yaml")




def test_a_missing_config_file_or_unset_variable_is_named(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml does not exist"):
        load_evaluation_config(tmp_path / "nowhere.yaml")
    monkeypatch.delenv("MT2KD_TEST_UNSET", raising=False)
    with pytest.raises(ValueError, match=r"evaluations\[0\]\.source: environment variable MT2KD_TEST_UNSET is not set"):
        evaluation_config_from_dict(
            {"evaluations": [{"task": "asr", "dataset": "x", "source": "${MT2KD_TEST_UNSET}/a.csv"}]}, tmp_path
        )
