"""training_mt2kd.evaluation.runner: model loading, batching, and WER / mAP / EER computed through its code path
(scripted outputs the test controls, and real random models)."""

import numpy as np
import pytest
import torch

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForCTC, MT2KDForRNNT, MT2KDForXVector
from processing_mt2kd import load_audio
from training_mt2kd.data import load_corpus
from training_mt2kd.evaluation.config import (
    AsrSpec,
    EvaluationConfig,
    SpeakerSpec,
    TaggingSpec,
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

from .evaluation_helpers import (
    datasets_cache_in_tmp,
    AN4_FILES,
    tokenizer,
    feature_extractor,
    write_manifest,
    fbank_frames,
    scripted_model,
    ctc_logits_spelling,
    an4_manifest,
    random_multitask,
    save_model_folder,
)


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




def test_trial_files_missing_under_root_are_reported_with_the_fix(tmp_path, data_dir, feature_extractor, monkeypatch):
    model, _ = scripted_model(monkeypatch, feature_extractor, outputs_by_frames={})
    trials = tmp_path / "trials.txt"
    trials.write_text("recordings/0_george_0.wav nowhere/x.wav target\n")
    spec = SpeakerSpec(task="speaker", dataset="fsdd", trials=str(trials), root=str(data_dir / "fsdd"))
    with pytest.raises(FileNotFoundError, match=r"1 of the 2 files .* \['nowhere/x.wav'\]; set 'root'"):
        evaluate_speaker(model, spec)
