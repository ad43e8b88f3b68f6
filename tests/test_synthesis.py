"""Demo corpus synthesis: eSpeak NG through ctypes, synthetic speakers, sound events, the corpus on disk."""

import csv
import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
from training_mt2kd.demo.synthesis import (
    DEMO_LABELS,
    SOUND_EVENT_CLASSES,
    EspeakUnavailableError,
    generate_sound_event,
    load_demo_corpus,
    sample_sentence,
    sample_speakers,
    synthesize,
    synthesize_demo_corpus,
)
from training_mt2kd.demo.synthesis import corpus as corpus_module
from training_mt2kd.demo.synthesis import espeak as espeak_module

TINY = {
    "num_speakers": 5,
    "utterances_per_speaker": 3,
    "num_event_clips": 12,
    "num_dev_speakers": 1,
    "num_test_speakers": 2,
}
SENTENCE = "the old farmer carried the heavy basket to the market"


def median_f0_hz(audio: np.ndarray, sample_rate: int = 16000) -> float:
    """Median autocorrelation pitch (60-400 Hz) over the loudest 30 % of 40 ms frames."""
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    frames = np.stack([audio[start : start + frame] for start in range(0, len(audio) - frame, hop)])
    energy = np.sum(frames**2, axis=1)
    frames = frames[energy >= np.quantile(energy, 0.7)]
    frames = frames - frames.mean(axis=1, keepdims=True)
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * frame)) ** 2)[:, :frame]
    shortest, longest = sample_rate // 400, sample_rate // 60
    lags = shortest + np.argmax(autocorrelation[:, shortest:longest], axis=1)
    return float(np.median(sample_rate / lags))


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    return synthesize_demo_corpus(tmp_path_factory.mktemp("tiny_corpus"), seed=0, show_progress=False, **TINY)


@pytest.fixture(scope="module")
def audioset_names(data_dir) -> set[str]:
    with open(data_dir / "sound_events" / "audioset_class_labels_indices.csv", newline="", encoding="utf-8") as file:
        return {row["display_name"] for row in csv.DictReader(file)}


# eSpeak NG binding


def test_synthesize_gives_audible_float32_audio_at_the_requested_rate():
    audio = synthesize("hello world", "en-us", sample_rate=16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.3 < len(audio) / 16000 < 3.0
    assert np.sqrt(np.mean(audio**2)) > 0.01 and np.max(np.abs(audio)) <= 1.0
    assert len(synthesize("hello world", "en-us", sample_rate=8000)) == pytest.approx(len(audio) / 2, rel=0.01)


def test_longer_text_gives_longer_audio():
    short = synthesize("hello", "en-us")
    longer = synthesize("hello there, how are you today", "en-us")
    longest = synthesize("hello there, how are you today? the weather is fine and the river is quiet", "en-us")
    assert len(short) < len(longer) < len(longest)


def test_same_arguments_give_the_same_samples_whatever_was_spoken_before():
    first = synthesize(SENTENCE, "en-gb-x-rp+m3", 160, 40)
    synthesize("something else entirely", "en-us+f2", 190, 70)
    assert np.array_equal(first, synthesize(SENTENCE, "en-gb-x-rp+m3", 160, 40))


def test_concurrent_calls_match_sequential_calls():
    voices = ["en-us+m1", "en+f3", "en-029+m5", "en-us-nyc+f2"]
    expected = [synthesize(SENTENCE, voice) for voice in voices]
    results: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, synthesize(SENTENCE, voices[i]))) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(results[i], expected[i]) for i in range(4))


def test_higher_pitch_setting_and_female_variant_raise_the_measured_pitch():
    low = median_f0_hz(synthesize(SENTENCE, "en-us+m3", 160, pitch=20))
    high = median_f0_hz(synthesize(SENTENCE, "en-us+m3", 160, pitch=80))
    female = median_f0_hz(synthesize(SENTENCE, "en-us+f3", 160, pitch=70))
    assert high > 1.3 * low
    assert female > 1.3 * high


def test_speaking_rate_changes_duration():
    slow = synthesize(SENTENCE, "en-us", rate_wpm=120)
    fast = synthesize(SENTENCE, "en-us", rate_wpm=240)
    assert len(fast) < 0.75 * len(slow)


def test_unknown_voice_is_named_in_the_error():
    with pytest.raises(ValueError, match="xx-nowhere"):
        synthesize("hello", "xx-nowhere")


@pytest.mark.parametrize("arguments", [{"text": "  "}, {"rate_wpm": 20}, {"pitch": 120}, {"pitch_range": -1}])
def test_out_of_range_arguments_are_rejected(arguments):
    with pytest.raises(ValueError):
        synthesize(**{"text": "hello", **arguments})


def test_missing_library_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(espeak_module, "_LOCATION", None)
    monkeypatch.setattr(espeak_module, "_library_locations", list)
    with pytest.raises(EspeakUnavailableError, match=r"pip install 'mt2kd\[demo\]'"):
        synthesize("hello", "en-us")


# Speakers, sentences, sound events


def test_speakers_are_deterministic_distinct_and_a_prefix_of_a_larger_draw():
    speakers = sample_speakers(100, seed=3)
    assert speakers == sample_speakers(100, seed=3)
    assert speakers[:10] == sample_speakers(10, seed=3)
    assert speakers != sample_speakers(100, seed=4)
    assert len({speaker.speaker_id for speaker in speakers}) == 100
    assert len({(speaker.voice, speaker.pitch) for speaker in speakers}) == 100


def test_sampled_speakers_differ_in_measured_pitch_and_duration():
    speakers = sample_speakers(2, seed=0)
    audio = [synthesize(SENTENCE, s.voice, s.rate_wpm, s.pitch, s.pitch_range) for s in speakers]
    pitches = sorted(median_f0_hz(clip) for clip in audio)
    assert pitches[1] > 1.2 * pitches[0]
    assert len(audio[0]) != len(audio[1])


def test_sentences_vary_and_are_plain_lower_case_words():
    rng = np.random.default_rng(0)
    sentences = [sample_sentence(rng) for _ in range(500)]
    assert len(set(sentences)) > 480
    assert len({word for sentence in sentences for word in sentence.split()}) > 200
    assert all(sentence == sentence.lower() and sentence.replace(" ", "").isalpha() for sentence in sentences)


def test_event_classes_are_audioset_display_names(audioset_names):
    assert len(SOUND_EVENT_CLASSES) >= 8
    assert set(DEMO_LABELS) <= audioset_names


@pytest.mark.parametrize("label", SOUND_EVENT_CLASSES)
def test_each_event_generator_gives_audible_finite_audio_of_the_requested_length(label):
    clip = generate_sound_event(label, 1.5, np.random.default_rng(0))
    assert clip.dtype == np.float32 and clip.shape == (24000,)
    assert np.isfinite(clip).all() and np.max(np.abs(clip)) == pytest.approx(1.0)
    assert np.array_equal(clip, generate_sound_event(label, 1.5, np.random.default_rng(0)))
    assert not np.array_equal(clip, generate_sound_event(label, 1.5, np.random.default_rng(1)))


def test_unknown_event_class_lists_the_known_ones():
    with pytest.raises(ValueError, match="Siren"):
        generate_sound_event("Dog", 1.0, np.random.default_rng(0))


# The corpus on disk


def test_corpus_is_byte_identical_for_the_same_seed(tiny_corpus, tmp_path):
    again = synthesize_demo_corpus(tmp_path / "again", seed=0, show_progress=False, **TINY)
    assert file_hashes(again.root) == file_hashes(tiny_corpus.root)


def test_manifests_describe_16khz_pcm16_files_with_their_durations(tiny_corpus):
    for split, manifest in tiny_corpus.manifests.items():
        rows = read_manifest(manifest)
        assert rows and list(rows[0]) == ["path", "transcript", "speaker", "labels", "duration_s", "split"]
        for row in rows:
            info = soundfile.info(tiny_corpus.root / row["path"])
            assert row["split"] == split
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert float(row["duration_s"]) == pytest.approx(info.duration, abs=1e-3)


def test_speech_clips_carry_speech_and_their_events_and_event_clips_do_not(tiny_corpus, audioset_names):
    rows = [row for manifest in tiny_corpus.manifests.values() for row in read_manifest(manifest)]
    speech = [row for row in rows if row["speaker"]]
    events = [row for row in rows if not row["speaker"]]
    assert len(speech) == 15 and len(events) == 12
    for row in rows:
        labels = row["labels"].split(";")
        assert set(labels) <= set(DEMO_LABELS) <= audioset_names
        assert len(labels) == len(set(labels))
    assert all(row["labels"].split(";")[0] == "Speech" and row["transcript"] for row in speech)
    assert all("Speech" not in row["labels"].split(";") and not row["transcript"] for row in events)
    assert any(";" in row["labels"] for row in speech)


def test_splits_are_speaker_disjoint(tiny_corpus):
    speakers = {
        split: {row["speaker"] for row in read_manifest(path) if row["speaker"]}
        for split, path in tiny_corpus.manifests.items()
    }
    assert [len(speakers[split]) for split in ("train", "dev", "test")] == [2, 1, 2]
    assert not (
        speakers["train"] & speakers["dev"]
        or speakers["train"] & speakers["test"]
        or speakers["dev"] & speakers["test"]
    )


def test_trials_pair_test_split_speech_only_with_targets_and_non_targets(tiny_corpus):
    speaker_of = {row["path"]: row["speaker"] for row in read_manifest(tiny_corpus.manifests["test"]) if row["speaker"]}
    trials = [line.split() for line in tiny_corpus.trials.read_text().splitlines()]
    assert {target for _, _, target in trials} == {"0", "1"}
    for enrol, test, target in trials:
        assert enrol in speaker_of and test in speaker_of and enrol != test
        assert (speaker_of[enrol] == speaker_of[test]) == (target == "1")


def test_rerun_with_the_same_parameters_reuses_the_corpus(tiny_corpus, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a finished corpus was synthesised again")

    monkeypatch.setattr(corpus_module, "synthesize", fail)
    hashes = file_hashes(tiny_corpus.root)
    assert synthesize_demo_corpus(tiny_corpus.root, seed=0, show_progress=False, **TINY) == tiny_corpus
    assert file_hashes(tiny_corpus.root) == hashes


def test_changed_parameters_replace_the_corpus(tmp_path):
    small = dict(TINY, num_speakers=4, num_dev_speakers=0, utterances_per_speaker=2, num_event_clips=2)
    synthesize_demo_corpus(tmp_path, seed=0, show_progress=False, **small)
    corpus = synthesize_demo_corpus(tmp_path, seed=1, show_progress=False, **dict(small, num_event_clips=0))
    listed = {row["path"] for manifest in corpus.manifests.values() for row in read_manifest(manifest)}
    on_disk = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.wav")}
    assert listed == on_disk and len(listed) == 8


def test_given_sentences_are_spoken_in_turn(tmp_path):
    sentences = ["the cat sat on the mat", "a bird sang in the tree", "we ate bread and cheese"]
    small = dict(TINY, num_speakers=3, num_dev_speakers=0, utterances_per_speaker=2, num_event_clips=0)
    corpus = synthesize_demo_corpus(tmp_path, sentences=sentences, show_progress=False, **small)
    transcripts = [row["transcript"] for manifest in corpus.manifests.values() for row in read_manifest(manifest)]
    assert sorted(transcripts) == sorted(sentences * 2)


def test_load_demo_corpus_finds_the_parts_and_labels(tiny_corpus):
    loaded = load_demo_corpus(tiny_corpus.root)
    assert loaded == tiny_corpus
    assert loaded.labels == DEMO_LABELS and all(path.is_file() for path in loaded.manifests.values())


def test_load_demo_corpus_without_a_finished_corpus_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="synthesize_demo_corpus"):
        load_demo_corpus(tmp_path)


def test_too_few_test_speakers_for_trials_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="num_test_speakers"):
        synthesize_demo_corpus(tmp_path, **dict(TINY, num_test_speakers=1))
