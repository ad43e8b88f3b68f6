"""Bad data: broken recordings mixed into a training corpus are skipped (or resampled / cut where
that is right), counted by reason with their ids in the run summary, and training goes on."""

import csv
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import soundfile

from processing_mt2kd import resample
from training_mt2kd.data import AudioCollator, DataHealth
from training_mt2kd.data import decode as decode_module
from training_mt2kd.recipe import finetune

from .conftest import REPO_ROOT

CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
TWO_HOURS_S = 2 * 60 * 60


def write_sparse_two_hour_wav(path: Path, declared_s: int = TWO_HOURS_S) -> None:
    """A 16 kHz 16-bit WAV of `declared_s` seconds of silence that takes a few kB of disk (a sparse file)."""
    data_bytes = 16000 * 2 * declared_s
    soundfile.write(path, np.zeros(16, np.int16), 16000, subtype="PCM_16")  # a canonical 44-byte header
    with open(path, "r+b") as wav:
        wav.seek(4)
        wav.write(struct.pack("<I", 36 + data_bytes))
        wav.seek(40)
        wav.write(struct.pack("<I", data_bytes))
        wav.truncate(44 + data_bytes)


def build_corpus(folder: Path, data_dir: Path) -> tuple[dict[str, str], set[str], dict[str, float]]:
    """Two real digits per FSDD speaker plus broken files, in one manifest.

    Returns `(skip reason by bad id, ids that must be trained on, expected seconds of the resampled ones)`.
    """
    recordings = folder / "recordings"
    recordings.mkdir(parents=True)
    fsdd = data_dir / "fsdd"
    with open(fsdd / "metadata.csv", newline="") as file:
        train = [row for row in csv.DictReader(file) if row["split"] == "train"]
    rows = []
    for number, speaker in enumerate(SPEAKERS):  # every digit word, for the BPE model trained on the text
        digits = {str(2 * number % 10), str((2 * number + 1) % 10)}
        for row in [row for row in train if row["speaker"] == speaker and row["label"] in digits][:2]:
            name = Path(row["path"]).name
            shutil.copy(fsdd / row["path"], recordings / name)
            rows.append({"path": f"recordings/{name}", "id": name, "transcript": row["transcript"],
                         "speaker": speaker, "duration_s": row["duration_s"]})
    source = fsdd / train[0]["path"]
    real_bytes = source.read_bytes()
    samples, rate = soundfile.read(source, dtype="float32")
    duration_s = len(samples) / rate

    # Broken files, listed in the manifest with a plausible duration (as a stale manifest would).
    (recordings / "truncated_header.wav").write_bytes(real_bytes[:30])
    (recordings / "empty.wav").write_bytes(b"")
    soundfile.write(recordings / "no_frames.wav", np.zeros(0, np.int16), 16000)
    (recordings / "not_audio.wav").write_text("this is a text file, not audio\n" * 20)
    soundfile.write(recordings / "nan.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    soundfile.write(recordings / "huge.wav", np.full(8000, 1e30, np.float32), 16000, subtype="FLOAT")  # unscaled
    # Usable files: cut short on disk (the rest is decoded), and at rates other than the corpus' own.
    (recordings / "truncated_data.wav").write_bytes(real_bytes[: len(real_bytes) // 2])
    stereo_44k = resample(samples, rate, 44100)
    soundfile.write(recordings / "stereo_44k.wav", np.stack([stereo_44k, stereo_44k], axis=1), 44100)
    soundfile.write(recordings / "flac_22k.flac", resample(samples, rate, 22050), 22050)
    # Two hours (a header that says so; the file is sparse): its duration cell is empty, so the corpus loader
    # reads the header and the duration filter drops it before anything is decoded.
    write_sparse_two_hour_wav(recordings / "two_hours.wav")

    bad = {
        "truncated_header.wav": "unreadable",
        "not_audio.wav": "unreadable",
        "empty.wav": "empty",
        "no_frames.wav": "empty",
        "nan.wav": "non_finite",
        "huge.wav": "non_finite",
        "two_hours.wav": "too_long",
    }
    usable = {"truncated_data.wav": None, "stereo_44k.wav": duration_s, "flac_22k.flac": duration_s}
    for name in [*bad, *usable]:
        rows.append({"path": f"recordings/{name}", "id": name, "transcript": "zero", "speaker": "george",
                     "duration_s": "" if name == "two_hours.wav" else f"{duration_s:.3f}"})
    with open(folder / "metadata.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    trained = {row["id"] for row in rows} - set(bad)
    return bad, trained, {name: seconds for name, seconds in usable.items() if seconds is not None}


class KeptExamples:
    """Spy on the collator: the id and length (samples at 16 kHz) of every example that reached a batch."""

    def __init__(self):
        self.samples: dict[str, int] = {}

    def wrap(self, collate):
        def spy(collator, examples):
            batch = collate(collator, examples)
            self.samples.update(zip(batch["ids"], batch["waveform_lengths"].tolist()))
            return batch

        return spy


def test_bad_files_in_a_corpus_are_skipped_counted_and_named_and_training_completes(
    tmp_path, data_dir, monkeypatch
):
    bad, trained, seconds = build_corpus(tmp_path / "corpus", data_dir)
    kept = KeptExamples()
    monkeypatch.setattr(AudioCollator, "__call__", kept.wrap(AudioCollator.__call__))
    corpus = {"name": "digits", "source": str(tmp_path / "corpus" / "metadata.csv"), "task": "asr+speaker",
              "columns": {"audio": "path", "id": "id", "text": "transcript", "speaker": "speaker",
                          "duration": "duration_s"}}
    steps = 3
    output_dir = tmp_path / "run"
    finetune.main([
        "--config", str(CONFIG), "--output_dir", str(output_dir), "--max_steps", str(steps),
        "--set", f"data.train={json.dumps([corpus])}",
        # One batch holds the whole corpus, so each step meets every file exactly once.
        "--set", "data.num_buckets=1", "--set", "data.max_batch_duration_s=600",
        "--set", "model.overrides={vocab_size: 18}",  # BPE trained on 21 digit words
    ])

    summary = json.loads((output_dir / "run_summary.json").read_text())
    assert summary["steps"] == steps
    health = summary["data_health"]
    expected_ids = {reason: {name for name, why in bad.items() if why == reason} for reason in set(bad.values())}
    assert {reason: set(ids) for reason, ids in health["ids"].items()} == expected_ids
    # The duration filter drops the 2-hour file once, at loading; the collator meets the others in every step.
    expected_counts = {reason: len(ids) * (1 if reason == "too_long" else steps) for reason, ids in expected_ids.items()}
    assert health["counts"] == expected_counts
    assert set(kept.samples) == trained
    for name, duration_s in seconds.items():  # resampled to 16 kHz (stereo averaged), not dropped
        assert abs(kept.samples[name] - duration_s * 16000) <= 2, name
    assert 0 < kept.samples["truncated_data.wav"] < seconds["stereo_44k.wav"] * 16000 / 2 + 16  # what is on disk


def test_a_manifest_that_understates_a_long_file_cannot_make_the_collator_decode_it(tmp_path, monkeypatch):
    write_sparse_two_hour_wav(tmp_path / "two_hours.wav")
    decoded = []
    monkeypatch.setattr(decode_module, "load_audio", lambda source, **kwargs: decoded.append(source))
    batch = AudioCollator(max_duration_s=30.0, tasks=("distill",))(
        [{"audio": {"bytes": None, "path": str(tmp_path / "two_hours.wav")}, "id": "two_hours"}]
    )
    health = DataHealth()
    health.record_events(batch["health_events"])
    assert batch["waveforms"].shape[0] == 0 and not decoded  # refused from its header alone
    assert health.counts == {"too_long": 1} and health.ids("too_long") == ["two_hours"]
