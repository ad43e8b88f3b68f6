"""AudioCollator: padded waveforms, task masks and targets; bad files skipped and counted."""

import numpy as np
import pytest
import soundfile
import torch

from training_mt2kd.data import IGNORE_INDEX, AudioCollator, DataHealth, LabelSet, SpeakerIndex, SpecAugment
from processing_mt2kd.feature_extraction_mt2kd import MT2KDFeatureExtractor

AN4_FILES = ["wav/fclc/an146-fclc-b.wav", "wav/fclc/an147-fclc-b.wav"]


def example(path, example_id: str, tasks=("asr",), **targets) -> dict:
    return {"audio": {"bytes": None, "path": str(path)}, "id": example_id, "tasks": tasks, **targets}


@pytest.fixture
def bad_files(tmp_path, data_dir) -> dict[str, str]:
    """One file per way a recording can be broken, keyed by the reason it must be skipped for."""
    real = (data_dir / "an4" / AN4_FILES[0]).read_bytes()
    (tmp_path / "truncated.wav").write_bytes(real[:30])
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio")
    soundfile.write(tmp_path / "no_frames.wav", np.zeros(0, dtype=np.float32), 16000)
    nan = np.full(16000, 0.1, dtype=np.float32)
    nan[100] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "long.wav", np.zeros(8000 * 31, dtype=np.int16), 8000)
    return {
        "truncated.wav": "unreadable",
        "text.wav": "unreadable",
        "missing.wav": "unreadable",
        "empty.wav": "empty",
        "no_frames.wav": "empty",
        "nan.wav": "non_finite",
        "long.wav": "too_long",
    }


def test_waveforms_are_padded_with_zeros_and_lengths_are_samples(data_dir):
    batch = AudioCollator()([example(data_dir / "an4" / path, path, text="x") for path in AN4_FILES])
    frames = [soundfile.info(data_dir / "an4" / path).frames for path in AN4_FILES]
    assert batch["waveforms"].dtype == torch.float32
    assert batch["waveforms"].shape == (2, max(frames))
    assert batch["waveform_lengths"].tolist() == frames
    shorter = int(np.argmin(frames))
    assert batch["waveforms"][shorter, frames[shorter] :].abs().sum() == 0
    reference, _ = soundfile.read(data_dir / "an4" / AN4_FILES[0], dtype="float32")
    assert torch.allclose(batch["waveforms"][0, : frames[0]], torch.from_numpy(reference))


def test_other_sample_rates_are_resampled(data_dir):
    path = data_dir / "fsdd/recordings/0_george_0.wav"  # 8 kHz
    batch = AudioCollator(sample_rate=16000)([example(path, "digit", tasks=("distill",))])
    assert batch["waveform_lengths"].item() == 2 * soundfile.info(path).frames


def test_bad_files_are_skipped_and_reported_by_reason_and_id(data_dir, tmp_path, bad_files):
    good = example(data_dir / "an4" / AN4_FILES[0], "good", text="x")
    batch = AudioCollator()([good] + [example(tmp_path / name, name, text="x") for name in bad_files])
    assert batch["ids"] == ["good"]
    assert batch["waveforms"].shape[0] == 1
    assert sorted(batch["health_events"]) == sorted((reason, name) for name, reason in bad_files.items())
    health = DataHealth()
    health.record_events(batch["health_events"])
    assert health.counts == {"unreadable": 3, "empty": 2, "non_finite": 1, "too_long": 1}
    assert health.ids("non_finite") == ["nan.wav"]


def test_a_batch_of_only_bad_files_is_empty_not_an_error(tmp_path, bad_files):
    batch = AudioCollator(label_set=LabelSet(["a"]))([example(tmp_path / name, name) for name in bad_files])
    assert batch["waveforms"].shape == (0, 0)
    assert batch["labels"].shape == (0, 1)
    assert all(mask.shape == (0,) for mask in batch["task_masks"].values())


def test_task_masks_follow_each_examples_tasks_and_targets(data_dir):
    path = data_dir / "an4" / AN4_FILES[0]
    examples = [
        example(path, "asr", tasks=("asr",), text="hello"),
        example(path, "asr-no-text", tasks=("asr",), text=""),
        example(path, "tags", tasks=("tagging",), labels="Speech;Music"),
        example(path, "spk", tasks=("speaker", "distill"), speaker="fclc"),
    ]
    collator = AudioCollator(
        label_set=LabelSet(["Speech", "Music", "Dog"]), speaker_index=SpeakerIndex(["fash", "fclc"])
    )
    batch = collator(examples)
    masks = {task: mask.tolist() for task, mask in batch["task_masks"].items()}
    assert masks == {
        "asr": [True, False, False, False],
        "tagging": [False, False, True, False],
        "speaker": [False, False, False, True],
        "distill": [False, False, False, True],
    }
    assert batch["text"] == ["hello", "", "", ""]
    assert batch["labels"].tolist()[2] == [1.0, 1.0, 0.0]
    assert batch["labels"][[0, 1, 3]].sum() == 0
    assert batch["speaker_ids"].tolist() == [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 1]


def test_unknown_speakers_and_labels_are_reported_not_fatal(data_dir):
    path = data_dir / "an4" / AN4_FILES[0]
    collator = AudioCollator(label_set=LabelSet(["Speech"]), speaker_index=SpeakerIndex(["fash"]))
    batch = collator([example(path, "x", tasks=("tagging", "speaker"), labels=["Speech", "Yodel"], speaker="nobody")])
    assert batch["labels"].tolist() == [[1.0]]
    assert batch["speaker_ids"].tolist() == [IGNORE_INDEX]
    assert batch["task_masks"]["speaker"].tolist() == [False]
    assert sorted(batch["health_events"]) == [("unknown_label", "x: Yodel"), ("unknown_speaker", "x")]


def test_feature_extractor_receives_the_clean_waveforms(data_dir):
    calls = []

    def feature_extractor(waveforms, sampling_rate, return_tensors):
        calls.append((waveforms, sampling_rate, return_tensors))
        frames = max(len(w) for w in waveforms) // 160
        return {
            "input_features": torch.zeros(len(waveforms), frames, 80),
            "attention_mask": torch.ones(len(waveforms), frames),
        }

    examples = [example(data_dir / "an4" / path, path, text="x") for path in AN4_FILES]
    batch = AudioCollator(feature_extractor=feature_extractor)(examples)
    waveforms, sampling_rate, return_tensors = calls[0]
    assert (sampling_rate, return_tensors) == (16000, "pt")
    assert [len(w) for w in waveforms] == batch["waveform_lengths"].tolist()
    assert batch["input_features"].shape[::2] == (2, 80)
    assert batch["attention_mask"].shape == batch["input_features"].shape[:2]


def test_examples_without_tasks_need_collator_tasks(data_dir):
    bare = {"audio": {"bytes": None, "path": str(data_dir / "an4" / AN4_FILES[0])}, "id": "x", "text": "hi"}
    with pytest.raises(ValueError, match="AudioCollator\\(tasks=...\\)"):
        AudioCollator()([bare])
    assert AudioCollator(tasks=["asr"])([bare])["task_masks"]["asr"].tolist() == [True]


def test_embedded_bytes_are_decoded(data_dir):
    audio = {"bytes": (data_dir / "an4" / AN4_FILES[0]).read_bytes(), "path": "an146.wav"}
    batch = AudioCollator(tasks=["distill"])([{"audio": audio, "id": "bytes"}])
    assert batch["waveform_lengths"].item() == soundfile.info(data_dir / "an4" / AN4_FILES[0]).frames


def test_model_feature_extractor_output_feeds_spec_augment(data_dir):
    examples = [example(data_dir / "an4" / path, path, text="x") for path in AN4_FILES]
    batch = AudioCollator(feature_extractor=MT2KDFeatureExtractor())(examples)
    assert batch["input_features"].shape[::2] == (2, 80)
    frames = batch["attention_mask"].sum(dim=1)
    assert (frames - batch["waveform_lengths"] / 160).abs().max() <= 1  # 10 ms frames
    augmented = SpecAugment()(batch["input_features"], batch["attention_mask"], torch.Generator().manual_seed(0))
    padded = ~batch["attention_mask"].bool()
    assert torch.equal(augmented[padded], batch["input_features"][padded])
