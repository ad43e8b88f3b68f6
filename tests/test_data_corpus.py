"""Corpus specs and loading: column roles, path safety, duration filter, label and speaker targets."""

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile

from training_mt2kd.data import (
    CorpusSpec,
    DataHealth,
    LabelSet,
    ManifestPathError,
    SkipReason,
    SpeakerIndex,
    load_corpus,
)

AN4_COLUMNS = {"audio": "path", "text": "transcript", "speaker": "speaker", "duration": "duration_s"}


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_manifest_columns_are_renamed_to_roles_and_paths_resolved(data_dir, tmp_path):
    spec = CorpusSpec(
        name="an4",
        source=str(data_dir / "an4/metadata.csv"),
        columns=AN4_COLUMNS,
        task="asr+speaker",
        cache_dir=str(tmp_path / "cache"),
    )
    corpus = load_corpus(spec)
    assert set(corpus.column_names) == {"audio", "text", "speaker", "id", "duration_s"}
    manifest = list(csv.DictReader(open(data_dir / "an4/metadata.csv")))
    assert len(corpus) == sum(1.0 <= float(row["duration_s"]) <= 30.0 for row in manifest)
    first = corpus[0]
    assert first["audio"] == {"bytes": None, "path": str(data_dir / "an4/wav/fclc/an146-fclc-b.wav")}
    assert first["text"] == "n l n s one seventy five"
    assert first["speaker"] == "fclc"
    assert first["id"] == "an4/wav/fclc/an146-fclc-b.wav"
    assert first["duration_s"] == pytest.approx(3.4)


def test_duration_filter_drops_and_counts_examples_outside_the_bounds(data_dir, tmp_path):
    spec = CorpusSpec(
        name="fsdd",
        source=str(data_dir / "fsdd/metadata.csv"),
        task="asr",
        cache_dir=str(tmp_path / "cache"),
        columns={"audio": "path", "text": "transcript", "duration": "duration_s"},
        min_duration_s=0.5,
        max_duration_s=0.6,
    )
    health = DataHealth()
    corpus = load_corpus(spec, health)
    manifest = list(csv.DictReader(open(data_dir / "fsdd/metadata.csv")))
    expected = [row for row in manifest if 0.5 <= float(row["duration_s"]) <= 0.6]
    assert len(corpus) == len(expected)
    durations = np.asarray(corpus.with_format("numpy")["duration_s"])
    assert durations.min() >= 0.5 and durations.max() <= 0.6
    assert health.counts[SkipReason.TOO_SHORT.value] == sum(float(r["duration_s"]) < 0.5 for r in manifest)
    assert health.counts[SkipReason.TOO_LONG.value] == sum(float(r["duration_s"]) > 0.6 for r in manifest)


def test_duration_is_measured_when_the_manifest_has_none(data_dir, tmp_path):
    manifest = write_csv(tmp_path / "m.csv", [{"file": "wav/fclc/an146-fclc-b.wav", "words": "x"}])
    spec = CorpusSpec(
        name="c",
        source=str(manifest),
        root=str(data_dir / "an4"),
        columns={"audio": "file", "text": "words"},
        cache_dir=str(tmp_path / "cache"),
    )
    assert load_corpus(spec)[0]["duration_s"] == pytest.approx(3.4, abs=0.01)


def test_split_role_keeps_only_the_requested_split(data_dir, tmp_path):
    spec = CorpusSpec(
        name="fsdd",
        source=str(data_dir / "fsdd/metadata.csv"),
        split="test",
        task="speaker",
        columns={"audio": "path", "speaker": "speaker", "duration": "duration_s", "split": "split"},
        min_duration_s=None,
        cache_dir=str(tmp_path / "cache"),
    )
    corpus = load_corpus(spec)
    manifest = list(csv.DictReader(open(data_dir / "fsdd/metadata.csv")))
    assert len(corpus) == sum(row["split"] == "test" for row in manifest)


@pytest.mark.parametrize("written", ["../outside.wav", "sub/../../outside.wav"])
def test_manifest_entry_escaping_the_root_is_rejected(tmp_path, written):
    (tmp_path / "corpus").mkdir()
    manifest = write_csv(tmp_path / "corpus/m.csv", [{"audio": written, "duration_s": 2.0}])
    spec = CorpusSpec(
        name="c",
        source=str(manifest),
        task="distill",
        columns={"audio": "audio", "duration": "duration_s"},
        cache_dir=str(tmp_path / "cache"),
    )
    with pytest.raises(ManifestPathError, match="leaves the corpus root"):
        load_corpus(spec)


def test_absolute_manifest_path_is_rejected_unless_allowed(data_dir, tmp_path):
    absolute = str(data_dir / "an4/wav/fclc/an146-fclc-b.wav")
    manifest = write_csv(tmp_path / "m.csv", [{"audio": absolute, "duration_s": 3.4}])
    columns = {"audio": "audio", "duration": "duration_s"}
    spec = CorpusSpec(
        name="c", source=str(manifest), task="distill", columns=columns, cache_dir=str(tmp_path / "cache")
    )
    with pytest.raises(ManifestPathError, match="allow_absolute_paths"):
        load_corpus(spec)
    allowed = CorpusSpec(
        name="c",
        source=str(manifest),
        task="distill",
        columns=columns,
        allow_absolute_paths=True,
        cache_dir=str(tmp_path / "cache"),
    )
    assert load_corpus(allowed)[0]["audio"]["path"] == absolute


def test_unreadable_file_without_duration_is_dropped_and_counted(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    manifest = write_csv(tmp_path / "m.csv", [{"audio": "junk.wav"}])
    health = DataHealth()
    corpus = load_corpus(
        CorpusSpec(name="c", source=str(manifest), task="distill", cache_dir=str(tmp_path / "cache")), health
    )
    assert len(corpus) == 0
    assert health.counts == {"unreadable": 1}
    assert health.ids("unreadable") == ["c/junk.wav"]


def test_jsonl_manifest_with_label_lists_loads(data_dir, tmp_path):
    manifest = tmp_path / "tags.jsonl"
    manifest.write_text(json.dumps({"wav": "freesound_ibm/applause.wav", "tags": ["Applause", "Clapping"]}) + "\n")
    spec = CorpusSpec(
        name="tags",
        source=str(manifest),
        root=str(data_dir / "sound_events"),
        task="tagging",
        columns={"audio": "wav", "labels": "tags"},
        cache_dir=str(tmp_path / "cache"),
    )
    example = load_corpus(spec)[0]
    assert example["labels"] == ["Applause", "Clapping"]
    assert example["duration_s"] == pytest.approx(10.498, abs=0.01)


def test_audio_folder_without_metadata_lists_its_audio_files(data_dir, tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    soundfile.write(folder / "sub/a.wav", np.full(16000 * 2, 0.1, dtype=np.float32), 16000)
    soundfile.write(folder / "b.flac", np.full(16000 * 3, 0.1, dtype=np.float32), 16000)
    corpus = load_corpus(CorpusSpec(name="f", source=str(folder), task="distill", cache_dir=str(tmp_path / "cache")))
    assert sorted(corpus["id"]) == ["f/b.flac", "f/sub/a.wav"]
    assert sorted(corpus["duration_s"]) == pytest.approx([2.0, 3.0])


@pytest.mark.parametrize("streaming", [False, True])
def test_parquet_with_an_audio_feature_keeps_the_embedded_bytes(data_dir, tmp_path, streaming):
    """The layout of Hub datasets: an `Audio` column holding each file's bytes."""
    wav_bytes = (data_dir / "an4/wav/fclc/an146-fclc-b.wav").read_bytes()
    audio_type = pa.struct({"bytes": pa.binary(), "path": pa.string()})
    table = pa.table(
        {"audio": pa.array([{"bytes": wav_bytes, "path": "an146.wav"}], type=audio_type), "sentence": ["x"]}
    )
    metadata = {"info": {"features": {"audio": {"_type": "Audio"}, "sentence": {"dtype": "string", "_type": "Value"}}}}
    table = table.replace_schema_metadata({"huggingface": json.dumps(metadata)})
    pq.write_table(table, tmp_path / "data.parquet")
    spec = CorpusSpec(
        name="p",
        source=str(tmp_path / "data.parquet"),
        columns={"audio": "audio", "text": "sentence"},
        streaming=streaming,
        cache_dir=str(tmp_path / "cache"),
    )
    example = next(iter(load_corpus(spec)))
    assert example["audio"]["bytes"] == wav_bytes
    assert example["duration_s"] == pytest.approx(3.4, abs=0.01)


def test_streaming_corpus_filters_lazily_and_counts(data_dir, tmp_path):
    spec = CorpusSpec(
        name="an4",
        source=str(data_dir / "an4/metadata.csv"),
        columns=AN4_COLUMNS,
        task="asr",
        streaming=True,
        max_duration_s=3.0,
    )
    health = DataHealth()
    examples = list(load_corpus(spec, health))
    manifest = list(csv.DictReader(open(data_dir / "an4/metadata.csv")))
    assert len(examples) == sum(1.0 <= float(row["duration_s"]) <= 3.0 for row in manifest)
    assert health.total == len(manifest) - len(examples)
    assert examples[0]["audio"]["path"].startswith(str(data_dir / "an4"))


def test_spec_rejects_a_task_without_its_column():
    with pytest.raises(ValueError, match="trains 'speaker' but maps no 'speaker' column"):
        CorpusSpec(name="c", source="x.csv", task="asr+speaker", columns={"audio": "a", "text": "t"})


def test_spec_rejects_unknown_task():
    with pytest.raises(ValueError, match="'asr\\+diarization' is not one of"):
        CorpusSpec(name="c", source="x.csv", task="asr+diarization", columns={"text": "t"})


def test_missing_column_names_the_available_ones(data_dir, tmp_path):
    spec = CorpusSpec(
        name="an4",
        source=str(data_dir / "an4/metadata.csv"),
        columns={"audio": "path", "text": "sentence"},
        cache_dir=str(tmp_path / "cache"),
    )
    with pytest.raises(ValueError, match="'text': 'sentence'.*transcript"):
        load_corpus(spec)


def test_label_set_maps_names_to_multi_hot_and_reports_unknown_names():
    labels = LabelSet({0: "Speech", 1: "Music", 2: "Male speech, man speaking"})
    multi_hot, unknown = labels.encode("Music;Male speech, man speaking;Theremin")
    assert multi_hot.tolist() == [0.0, 1.0, 1.0]
    assert unknown == ["Theremin"]
    assert labels.encode(["Speech"])[0].tolist() == [1.0, 0.0, 0.0]
    assert labels.encode(None)[0].tolist() == [0.0, 0.0, 0.0]


def test_digit_labels_match_by_their_decimal_name():
    assert LabelSet([str(digit) for digit in range(10)]).encode(3)[0].argmax() == 3


def test_speaker_index_is_sorted_and_round_trips_through_json(tmp_path):
    index = SpeakerIndex.from_names(["theo", "george", "jackson", "george", None, ""])
    assert index.speakers == ["george", "jackson", "theo"]
    index.save(tmp_path / "speakers.json")
    loaded = SpeakerIndex.load(tmp_path / "speakers.json")
    assert [loaded.get(name) for name in ("george", "jackson", "theo", "nicolas")] == [0, 1, 2, None]


def test_speaker_index_load_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object with a 'speakers' list"):
        SpeakerIndex.load(tmp_path / "x.json")


def test_nan_cells_become_missing_values(data_dir, tmp_path):
    spec = CorpusSpec(
        name="events",
        source=str(data_dir / "sound_events/metadata.csv"),
        task="speaker",
        columns={"audio": "path", "speaker": "speaker", "duration": "duration_s"},
        max_duration_s=None,
        cache_dir=str(tmp_path / "cache"),
    )
    assert set(load_corpus(spec)["speaker"]) == {None}  # the column is empty: pandas reads NaN


def test_streaming_corpus_names_a_missing_column(data_dir):
    """Named when loading if the stream announces its columns, otherwise when first read."""
    spec = CorpusSpec(
        name="an4", source=str(data_dir / "an4/metadata.csv"), streaming=True, columns={"audio": "wav"}, task="distill"
    )
    with pytest.raises(ValueError, match=r"columns .*'wav'.* are not in"):
        next(iter(load_corpus(spec)))


def test_streaming_corpus_keeps_only_role_columns(data_dir):
    spec = CorpusSpec(
        name="an4", source=str(data_dir / "an4/metadata.csv"), streaming=True, columns=AN4_COLUMNS, task="asr"
    )
    assert set(next(iter(load_corpus(spec)))) == {"audio", "id", "duration_s", "text", "speaker"}


def test_row_without_an_audio_path_is_dropped_and_counted(data_dir, tmp_path):
    manifest = write_csv(
        tmp_path / "m.csv", [{"audio": "", "text": "lost"}, {"audio": "wav/fclc/an146-fclc-b.wav", "text": "kept"}]
    )
    health = DataHealth()
    spec = CorpusSpec(
        name="c",
        source=str(manifest),
        root=str(data_dir / "an4"),
        columns={"audio": "audio", "text": "text"},
        cache_dir=str(tmp_path / "cache"),
    )
    assert list(load_corpus(spec, health)["text"]) == ["kept"]
    assert health.counts == {"unreadable": 1} and health.ids("unreadable") == ["c/0"]
