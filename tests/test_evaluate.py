"""training/evaluate.py (training_mt2kd.evaluation: config, runner, cli): config checking, model loading, and
WER / mAP / EER computed through its code path."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForCTC, MT2KDForMultiTask, MT2KDForRNNT, MT2KDForXVector
from modeling_mt2kd.outputs import MultiTaskOutput
from processing_mt2kd import MT2KDFeatureExtractor, load_audio, train_bpe_tokenizer
from training_mt2kd.data import load_corpus
from training_mt2kd.evaluation.cli import main
from training_mt2kd.evaluation.config import (
    AsrSpec,
    EvaluationConfig,
    SpeakerSpec,
    TaggingSpec,
    evaluation_config_from_dict,
    load_evaluation_config,
)
from training_mt2kd.evaluation.runner import (
    EvaluatedModel,
    UnusableExampleError,
    evaluate_asr,
    evaluate_speaker,
    evaluate_tagging,
    run_evaluations,
    transcribe_corpus,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO_ROOT / "training" / "configs"
AN4_FILES = {  # four AN4 utterances of different lengths
    "wav/fclc/an146-fclc-b.wav": "n l n s one seventy five",
    "wav/fclc/an147-fclc-b.wav": "q e e a six",
    "wav/fclc/an148-fclc-b.wav": "erase o j t k s thirty five",
    "wav/fclc/an149-fclc-b.wav": "enter nine eighty nine",
}
RESULT_KEYS = {
    "wer": ["task", "dataset", "dataset_config", "split", "decoding", "metric", "value", "num_examples"],
    "map": ["task", "dataset", "dataset_config", "split", "metric", "value", "num_examples"],
    "eer": ["task", "dataset", "dataset_config", "split", "metric", "value", "num_examples"],
    "min_dcf": ["task", "dataset", "dataset_config", "split", "metric", "p_target", "value"],
}


@pytest.fixture(autouse=True)
def datasets_cache_in_tmp(tmp_path, monkeypatch):
    """Manifests are prepared by `datasets`; keep its cache out of the user's home."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, data_dir):
    with open(data_dir / "an4/metadata.csv", encoding="utf-8") as file:
        transcripts = [row["transcript"] for row in csv.DictReader(file)]
    return train_bpe_tokenizer(transcripts * 3, tmp_path_factory.mktemp("bpe"), vocab_size=40)


@pytest.fixture(scope="module")
def feature_extractor():
    return MT2KDFeatureExtractor()


def write_manifest(path: Path, rows: list[dict]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def fbank_frames(path: Path, feature_extractor: MT2KDFeatureExtractor) -> int:
    """The number of feature frames evaluation will compute for `path` (the key of scripted outputs)."""
    waveform, _ = load_audio(path, target_sample_rate=feature_extractor.sampling_rate)
    return feature_extractor.num_frames(waveform.shape[0])


class ScriptedForward:
    """A `MT2KDForMultiTask.forward` replacement: each utterance, recognised by its number of feature
    frames, gets the outputs written for it; `rows_seen` counts the utterances run."""

    def __init__(self, outputs_by_frames: dict[int, dict[str, torch.Tensor]]) -> None:
        self.outputs_by_frames = outputs_by_frames
        self.rows_seen = 0

    def __call__(self, input_features, attention_mask=None, **kwargs) -> MultiTaskOutput:
        rows = [self.outputs_by_frames[int(frames)] for frames in attention_mask.sum(dim=1)]
        self.rows_seen += len(rows)
        output = MultiTaskOutput(attention_mask=torch.ones(len(rows), 1, dtype=torch.long))
        if "ctc_logits" in rows[0]:
            logits = [row["ctc_logits"] for row in rows]
            output.ctc_logits = pad_sequence(logits, batch_first=True)
            lengths = torch.tensor([len(frames) for frames in logits])
            output.attention_mask = (torch.arange(output.ctc_logits.shape[1]) < lengths[:, None]).long()
        for name in ("tagging_logits", "speaker_embeddings"):
            if name in rows[0]:
                setattr(output, name, torch.stack([row[name] for row in rows]))
        return output


def scripted_model(
    monkeypatch, feature_extractor, tokenizer=None, id2label=None, outputs_by_frames=None
) -> tuple[EvaluatedModel, ScriptedForward]:
    overrides = {"vocab_size": len(tokenizer)} if tokenizer is not None else {}
    if id2label is not None:
        overrides["id2label"] = dict(enumerate(id2label))
    model = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", **overrides))
    forward = ScriptedForward(outputs_by_frames)
    monkeypatch.setattr(model, "forward", forward)
    return EvaluatedModel(model, feature_extractor, tokenizer), forward


def ctc_logits_spelling(text: str, tokenizer) -> torch.Tensor:
    """(frames, vocab) logits whose greedy CTC path is `text`: each token then a blank."""
    token_ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(token_ids, group_tokens=False) == text
    logits = torch.full((2 * len(token_ids) + 3, len(tokenizer)), -10.0)
    logits[:, tokenizer.blank_token_id] = 10.0
    for position, token_id in enumerate(token_ids):
        logits[2 * position, token_id] = 20.0
    return logits


def an4_manifest(tmp_path: Path) -> str:
    rows = [{"path": path, "transcript": text} for path, text in AN4_FILES.items()]
    return write_manifest(tmp_path / "an4.csv", rows)


# --- metrics through evaluate's code path, with outputs the test controls ---------------------------


@pytest.mark.parametrize("batch_duration_s", [3.5, 100.0])
def test_wer_of_scripted_ctc_hypotheses_counts_one_substitution_deletion_and_insertion(
    monkeypatch, tmp_path, data_dir, tokenizer, feature_extractor, batch_duration_s
):
    hypotheses = {
        "wav/fclc/an146-fclc-b.wav": "n l n s one seventy five",
        "wav/fclc/an147-fclc-b.wav": "q e e a two",  # substitution
        "wav/fclc/an148-fclc-b.wav": "erase o j t k s five",  # deletion
        "wav/fclc/an149-fclc-b.wav": "enter nine eighty nine nine",  # insertion
    }
    outputs = {
        fbank_frames(data_dir / "an4" / path, feature_extractor): {"ctc_logits": ctc_logits_spelling(text, tokenizer)}
        for path, text in hypotheses.items()
    }
    assert len(outputs) == len(hypotheses), "the utterances must differ in length to be told apart"
    model, _ = scripted_model(monkeypatch, feature_extractor, tokenizer, outputs_by_frames=outputs)
    spec = AsrSpec(
        task="asr",
        dataset="an4",
        split="all",
        source=an4_manifest(tmp_path),
        root=str(data_dir / "an4"),
        columns={"audio": "path", "text": "transcript"},
        decoding=["ctc_greedy"],
    )

    [result] = evaluate_asr(model, spec, batch_duration_s=batch_duration_s)

    num_reference_words = sum(len(text.split()) for text in AN4_FILES.values())
    assert result["value"] == pytest.approx(100.0 * 3 / num_reference_words)
    assert result["num_examples"] == 4 and result["decoding"] == "ctc_greedy"


def test_map_of_scripted_tag_scores_averages_the_classes_that_have_positives(
    monkeypatch, tmp_path, data_dir, feature_extractor
):
    labels = ["Music", "Bird", "Thunderstorm", "Piano", "Speech"]  # no clip is Speech: skipped
    clips = {  # path: (label, scores per class)
        "freesound_ibm/arcade_music.wav": ("Music", [0.6, 0.1, 0.7, 0.1, 0.5]),
        "freesound_ibm/piano.wav": ("Piano", [0.9, 0.2, 0.1, 0.8, 0.5]),
        "librosa/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg": ("Bird", [0.2, 0.8, 0.8, 0.1, 0.5]),
        "esc50/3-103051-C-19.wav": ("Thunderstorm", [0.5, 0.3, 0.6, 0.2, 0.5]),
    }
    outputs = {
        fbank_frames(data_dir / "sound_events" / path, feature_extractor): {
            "tagging_logits": torch.logit(torch.tensor(scores))
        }
        for path, (_, scores) in clips.items()
    }
    assert len(outputs) == len(clips)
    model, _ = scripted_model(monkeypatch, feature_extractor, id2label=labels, outputs_by_frames=outputs)
    manifest = write_manifest(
        tmp_path / "tags.csv", [{"path": path, "label": label} for path, (label, _) in clips.items()]
    )
    spec = TaggingSpec(
        task="tagging",
        dataset="sound_events",
        source=manifest,
        root=str(data_dir / "sound_events"),
        columns={"audio": "path", "labels": "label"},
    )

    [result] = evaluate_tagging(model, spec, batch_duration_s=12.0)

    # AP: Music 1/2 (ranked 2nd), Bird 1, Thunderstorm 1/3 (ranked 3rd), Piano 1.
    assert result["value"] == pytest.approx(100.0 * (0.5 + 1.0 + 1 / 3 + 1.0) / 4)
    assert result["num_examples"] == 4 and result["metric"] == "map"


def test_tag_names_missing_from_the_models_labels_stop_the_evaluation(
    monkeypatch, tmp_path, data_dir, feature_extractor
):
    path = "esc50/3-103051-C-19.wav"
    outputs = {fbank_frames(data_dir / "sound_events" / path, feature_extractor): {"tagging_logits": torch.zeros(2)}}
    model, _ = scripted_model(monkeypatch, feature_extractor, id2label=["Music", "Bird"], outputs_by_frames=outputs)
    manifest = write_manifest(tmp_path / "tags.csv", [{"path": path, "label": "Thunderstorm"}])
    spec = TaggingSpec(
        task="tagging",
        dataset="sound_events",
        source=manifest,
        root=str(data_dir / "sound_events"),
        columns={"audio": "path", "labels": "label"},
    )
    with pytest.raises(UnusableExampleError, match="Thunderstorm"):
        evaluate_tagging(model, spec)


@pytest.mark.parametrize("batch_duration_s", [0.5, 100.0])
def test_eer_and_min_dcf_of_scripted_embeddings_on_a_voxceleb_order_trial_list(
    monkeypatch, tmp_path, data_dir, feature_extractor, batch_duration_s
):
    angles_deg = {  # 2-D embeddings: the cosine score of a trial is cos(angle difference)
        "recordings/0_george_0.wav": 0.0,
        "recordings/1_george_0.wav": 10.0,
        "recordings/2_george_0.wav": 80.0,
        "recordings/0_jackson_0.wav": 60.0,
        "recordings/1_jackson_0.wav": 100.0,
    }
    outputs = {
        fbank_frames(data_dir / "fsdd" / path, feature_extractor): {
            "speaker_embeddings": torch.tensor(
                [np.cos(np.radians(angle)), np.sin(np.radians(angle))], dtype=torch.float32
            )
        }
        for path, angle in angles_deg.items()
    }
    assert len(outputs) == len(angles_deg)
    model, forward = scripted_model(monkeypatch, feature_extractor, outputs_by_frames=outputs)
    trials = tmp_path / "trials.txt"
    trials.write_text(
        "1 recordings/0_george_0.wav recordings/1_george_0.wav\n"  # target, cos 10 = 0.98
        "1 recordings/0_george_0.wav recordings/2_george_0.wav\n"  # target, cos 80 = 0.17
        "0 recordings/0_george_0.wav recordings/0_jackson_0.wav\n"  # non-target, cos 60 = 0.5
        "0 recordings/1_george_0.wav recordings/1_jackson_0.wav\n"  # non-target, cos 90 = 0
    )
    spec = SpeakerSpec(task="speaker", dataset="fsdd", trials=str(trials), root=str(data_dir / "fsdd"))

    results = evaluate_speaker(model, spec, batch_duration_s=batch_duration_s)

    by_metric = {(entry["metric"], entry.get("p_target")): entry for entry in results}
    # Threshold 0.5 rejects one target and accepts one non-target of two each: EER 50 %.
    assert by_metric[("eer", None)]["value"] == pytest.approx(50.0)
    assert by_metric[("eer", None)]["num_examples"] == 4
    # Best cost: accept only the 0.98 trial (miss 1/2, no false alarm) -> 0.5 at either prior.
    assert by_metric[("min_dcf", 0.01)]["value"] == pytest.approx(0.5)
    assert by_metric[("min_dcf", 0.05)]["value"] == pytest.approx(0.5)
    assert forward.rows_seen == len(angles_deg), "each distinct file is embedded exactly once"


def test_speaker_corpus_without_trial_list_scores_every_pair_once(monkeypatch, tmp_path, data_dir, feature_extractor):
    speakers = {
        "recordings/0_george_0.wav": "george",
        "recordings/1_george_0.wav": "george",
        "recordings/0_jackson_0.wav": "jackson",
        "recordings/1_jackson_0.wav": "jackson",
    }
    embeddings = {"george": [1.0, 0.0], "jackson": [0.0, 1.0]}
    outputs = {
        fbank_frames(data_dir / "fsdd" / path, feature_extractor): {
            "speaker_embeddings": torch.tensor(embeddings[speaker])
        }
        for path, speaker in speakers.items()
    }
    model, _ = scripted_model(monkeypatch, feature_extractor, outputs_by_frames=outputs)
    manifest = write_manifest(tmp_path / "fsdd.csv", [{"path": p, "speaker": s} for p, s in speakers.items()])
    spec = SpeakerSpec(
        task="speaker",
        dataset="fsdd",
        source=manifest,
        root=str(data_dir / "fsdd"),
        columns={"audio": "path", "speaker": "speaker"},
        p_targets=[0.01],
    )

    eer, dcf = evaluate_speaker(model, spec)

    assert eer["num_examples"] == 6  # 4 choose 2
    assert eer["value"] == pytest.approx(0.0) and dcf["value"] == pytest.approx(0.0)


# --- real (random) models ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_multitask(tokenizer):
    torch.manual_seed(0)
    model = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", vocab_size=len(tokenizer))).eval()
    with torch.no_grad():  # make the untrained transducer emit tokens rather than only blanks
        model.transducer.joiner.output_linear.bias[model.config.blank_id] = -5.0
    return model


def test_batched_transducer_hypotheses_match_generate_on_each_utterance(
    tmp_path, data_dir, tokenizer, feature_extractor, random_multitask
):
    model = EvaluatedModel(random_multitask, feature_extractor, tokenizer)
    spec = AsrSpec(
        task="asr",
        dataset="an4",
        source=an4_manifest(tmp_path),
        root=str(data_dir / "an4"),
        columns={"audio": "path", "text": "transcript"},
    )
    methods = ["greedy_search", "modified_beam_search"]

    references, hypotheses = transcribe_corpus(model, load_corpus(spec.corpus_spec()), methods, beam_size=3)

    random_multitask.save_pretrained(tmp_path / "model")
    transducer = MT2KDForRNNT.from_pretrained(tmp_path / "model").eval()
    for path, reference in AN4_FILES.items():
        waveform, _ = load_audio(data_dir / "an4" / path)
        features = feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")
        for method in methods:
            [alone] = transducer.generate(**features, decoding_method=method, beam=3)
            assert hypotheses[method][references.index(reference)] == tokenizer.decode(alone.tokens, group_tokens=False)
    assert any(hypotheses["greedy_search"]), "the check needs non-empty hypotheses"


def save_model_folder(model, folder: Path, tokenizer=None) -> Path:
    model.save_pretrained(folder)
    MT2KDFeatureExtractor().save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def test_single_head_ctc_folder_loads_its_class_and_decodes_like_the_multitask_model(
    tmp_path, data_dir, tokenizer, random_multitask
):
    multitask_dir = save_model_folder(random_multitask, tmp_path / "multitask", tokenizer)
    ctc_dir = save_model_folder(MT2KDForCTC.from_pretrained(multitask_dir), tmp_path / "ctc", tokenizer)
    spec = AsrSpec(
        task="asr",
        dataset="an4",
        source=an4_manifest(tmp_path),
        root=str(data_dir / "an4"),
        columns={"audio": "path", "text": "transcript"},
        decoding=["ctc_greedy"],
    )

    multitask = EvaluatedModel.from_folder(multitask_dir)
    ctc = EvaluatedModel.from_folder(ctc_dir)

    assert type(ctc.model) is MT2KDForCTC and ctc.tasks == ("asr",) and ctc.decoding_methods == ("ctc_greedy",)
    assert multitask.tasks == ("asr", "tagging", "speaker")
    assert evaluate_asr(ctc, spec, batch_duration_s=5.0) == evaluate_asr(multitask, spec, batch_duration_s=5.0)


def test_tasks_without_a_head_are_refused_before_any_data_is_read(tmp_path, feature_extractor):
    torch.manual_seed(0)
    model = EvaluatedModel(MT2KDForXVector(MT2KDConfig.from_preset("mt2kd-tiny")), feature_extractor)
    config = EvaluationConfig([AsrSpec(task="asr", dataset="openslr/librispeech_asr")])
    with pytest.raises(ValueError, match=r"the MT2KDForXVector has no head for 'asr' \(it evaluates \['speaker'\]\)"):
        run_evaluations(model, config)


def test_cli_writes_results_json_in_the_agreed_schema(tmp_path, data_dir, tokenizer, random_multitask):
    model_dir = save_model_folder(random_multitask, tmp_path / "model", tokenizer)
    write_manifest(
        tmp_path / "tags.csv",
        [
            {"path": "esc50/3-103051-C-19.wav", "label": "Thunderstorm"},
            {"path": "librosa/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg", "label": "Bird"},
        ],
    )
    files = [
        "recordings/0_george_0.wav",
        "recordings/1_george_1.wav",
        "recordings/0_jackson_0.wav",
        "recordings/1_jackson_1.wav",
        "recordings/0_lucas_0.wav",
    ]
    trial_lines = [
        f"{1 if a.split('_')[1] == b.split('_')[1] else 0} {a} {b}" for i, a in enumerate(files) for b in files[i + 1 :]
    ]
    (tmp_path / "trials.txt").write_text("\n".join(trial_lines) + "\n")
    config = tmp_path / "eval.yaml"
    config.write_text(f"""
batch_duration_s: 20
evaluations:
  - {{task: asr, dataset: an4, split: all, source: an4.csv, root: {data_dir}/an4,
      columns: {{audio: path, text: transcript}}, decoding: [ctc_greedy, greedy_search, modified_beam_search]}}
  - {{task: tagging, dataset: sound_events, split: all, source: tags.csv, root: {data_dir}/sound_events,
      columns: {{audio: path, labels: label}}}}
  - {{task: speaker, dataset: fsdd, trials: trials.txt, root: {data_dir}/fsdd}}
""")
    an4_manifest(tmp_path)
    output = tmp_path / "out" / "results.json"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets")}

    completed = subprocess.run(
        [
            sys.executable,
            "training/evaluate.py",
            "--model",
            str(model_dir),
            "--config",
            str(config),
            "--output",
            str(output),
            "--device",
            "cpu",
            "--batch_duration_s",
            "8",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(output.read_text())
    assert set(results) == {"model", "results"} and results["model"] == str(model_dir)
    assert [
        (entry["task"], entry["metric"], entry.get("decoding"), entry.get("p_target")) for entry in results["results"]
    ] == [
        ("asr", "wer", "ctc_greedy", None),
        ("asr", "wer", "greedy_search", None),
        ("asr", "wer", "modified_beam_search", None),
        ("tagging", "map", None, None),
        ("speaker", "eer", None, None),
        ("speaker", "min_dcf", None, 0.01),
        ("speaker", "min_dcf", None, 0.05),
    ]
    for entry in results["results"]:
        assert list(entry) == RESULT_KEYS[entry["metric"]]
        assert isinstance(entry["value"], float) and np.isfinite(entry["value"])
        assert entry["dataset_config"] is None
    assert [entry.get("num_examples") for entry in results["results"]] == [4, 4, 4, 2, len(trial_lines), None, None]


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


def test_cli_reports_a_bad_config_as_a_usage_error(tmp_path, capsys):
    config = tmp_path / "eval.yaml"
    config.write_text("evaluations:\n  - {task: diarization, dataset: x}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tmp_path), "--config", str(config), "--output", str(tmp_path / "results.json")])
    assert exit_info.value.code == 2
    assert "task 'diarization' is not one of ['asr', 'tagging', 'speaker']" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_a_missing_config_file_or_unset_variable_is_named(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml does not exist"):
        load_evaluation_config(tmp_path / "nowhere.yaml")
    monkeypatch.delenv("MT2KD_TEST_UNSET", raising=False)
    with pytest.raises(ValueError, match=r"evaluations\[0\]\.source: environment variable MT2KD_TEST_UNSET is not set"):
        evaluation_config_from_dict(
            {"evaluations": [{"task": "asr", "dataset": "x", "source": "${MT2KD_TEST_UNSET}/a.csv"}]}, tmp_path
        )


def test_trial_files_missing_under_root_are_reported_with_the_fix(tmp_path, data_dir, feature_extractor, monkeypatch):
    model, _ = scripted_model(monkeypatch, feature_extractor, outputs_by_frames={})
    trials = tmp_path / "trials.txt"
    trials.write_text("recordings/0_george_0.wav nowhere/x.wav target\n")
    spec = SpeakerSpec(task="speaker", dataset="fsdd", trials=str(trials), root=str(data_dir / "fsdd"))
    with pytest.raises(FileNotFoundError, match=r"1 of the 2 files .* \['nowhere/x.wav'\]; set 'root'"):
        evaluate_speaker(model, spec)
