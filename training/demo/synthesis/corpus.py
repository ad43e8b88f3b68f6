"""The demo corpus: synthetic speakers reading sentences, mixed with generated sound events, on disk.

Layout under `output_dir` (every path in a manifest or trial list is relative to `output_dir`):

    train.csv, dev.csv, test.csv   path, transcript, speaker, labels, duration_s, split
    trials.txt                     "enrol_path test_path 1|0" over the test speakers
    speakers.csv                   speaker, voice, rate_wpm, pitch, pitch_range, split
    wav/<split>/speech/<speaker>-<n>.wav, wav/<split>/events/event-<n>.wav   16 kHz PCM16
    mt2kd_demo_corpus.json         completion marker: parameters, labels, eSpeak NG version

Speakers are split disjointly into train, dev and test; every speech clip carries the AudioSet
label "Speech" plus those of the 0-2 events mixed into it, over background noise. Event-only clips
hold one or two events. Everything is drawn from `seed`, each clip from its own generator, so a
re-run writes the same bytes; a run whose marker matches the parameters returns at once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from training_mt2kd.demo.synthesis.espeak import espeak_version, synthesize
from training_mt2kd.demo.synthesis.sentences import sample_sentence
from training_mt2kd.demo.synthesis.sound_events import SOUND_EVENT_CLASSES, background_noise, generate_sound_event
from training_mt2kd.demo.synthesis.speakers import SyntheticSpeaker, sample_speakers

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
MANIFEST_COLUMNS = ("path", "transcript", "speaker", "labels", "duration_s", "split")
SPEAKER_COLUMNS = ("speaker", "voice", "rate_wpm", "pitch", "pitch_range", "split")
SPEECH_LABEL = "Speech"
DEMO_LABELS = (SPEECH_LABEL, *SOUND_EVENT_CLASSES)  # AudioSet display names, in AudioSet order
LABEL_SEPARATOR = ";"
MARKER_NAME = "mt2kd_demo_corpus.json"
FORMAT_VERSION = 1

# Mixing. Levels compare "active" RMS (loud frames only), so sparse events such as knocks count fairly.
EVENTS_PER_SPEECH_CLIP_PROBABILITIES = (0.5, 0.3, 0.2)  # 0, 1 or 2 events
SPEECH_TO_EVENT_DB = (3.0, 15.0)
SPEECH_TO_NOISE_DB = (15.0, 35.0)
EVENT_TO_NOISE_DB = (10.0, 30.0)
SECOND_EVENT_PROBABILITY = 0.3  # event-only clips holding a second class
SECOND_EVENT_RELATIVE_DB = (-6.0, 3.0)
EVENT_CLIP_DURATION_S = (2.0, 5.0)
EVENT_IN_MIXTURE_DURATION_S = (1.0, 3.0)
SPEECH_PADDING_S = (0.1, 0.5)  # silence before and after the words
PEAK_DBFS = (-12.0, -1.0)  # clip loudness
EVENT_CLIP_DEV_FRACTION = 0.1
EVENT_CLIP_TEST_FRACTION = 0.1


@dataclass(frozen=True)
class DemoCorpus:
    """Where a finished demo corpus lives; manifest and trial paths are relative to `root`."""

    root: Path
    manifests: dict[str, Path]  # split -> CSV with MANIFEST_COLUMNS
    trials: Path
    speakers: Path
    labels: tuple[str, ...]  # AudioSet display names used, in AudioSet order


@dataclass(frozen=True)
class _ClipPlan:
    path: str  # relative to the corpus root
    split: str
    seed: tuple[int, ...]  # this clip's own random stream
    speaker: SyntheticSpeaker | None = None
    transcript: str = ""
    event: str | None = None  # main class of an event-only clip


def synthesize_demo_corpus(
    output_dir: str | Path,
    seed: int = 0,
    num_speakers: int = 100,
    utterances_per_speaker: int = 30,
    num_event_clips: int = 400,
    num_dev_speakers: int = 4,
    num_test_speakers: int = 6,
    sentences: Sequence[str] | None = None,
    show_progress: bool = True,
) -> DemoCorpus:
    """Write the demo corpus to `output_dir` (or reuse it) and return where its parts are.

    `num_speakers` synthetic speakers (of whom `num_dev_speakers` and `num_test_speakers` are held
    out) each read `utterances_per_speaker` sentences, drawn from the built-in grammar or from
    `sentences`; `num_event_clips` clips hold sound events only, about 80/10/10 % train/dev/test
    per class. The defaults (the demo's) take about 40 s on one CPU core; a few speakers and clips
    make a corpus for tests in seconds.
    """
    root = Path(output_dir)
    parameters = _parameters(
        seed, num_speakers, utterances_per_speaker, num_event_clips, num_dev_speakers, num_test_speakers, sentences
    )
    marker = root / MARKER_NAME
    reusable = _reusable_corpus(root, parameters)
    if reusable is not None:
        return reusable

    speakers = sample_speakers(num_speakers, seed)
    num_train_speakers = num_speakers - num_dev_speakers - num_test_speakers
    split_of_position = ["train"] * num_train_speakers + ["dev"] * num_dev_speakers + ["test"] * num_test_speakers
    speaker_splits = {speaker.speaker_id: split for speaker, split in zip(speakers, split_of_position)}
    plans = _speech_plans(speakers, speaker_splits, utterances_per_speaker, seed, sentences)
    plans += _event_plans(num_event_clips, seed)

    rows = _render_clips(plans, root, show_progress)
    for split in SPLITS:
        _write_csv(root / f"{split}.csv", MANIFEST_COLUMNS, rows[split])
    speaker_rows = [
        {"speaker": speaker.speaker_id, "voice": speaker.voice, "rate_wpm": str(speaker.rate_wpm), "pitch": str(speaker.pitch),
         "pitch_range": str(speaker.pitch_range), "split": speaker_splits[speaker.speaker_id]}
        for speaker in speakers
    ]  # fmt: skip
    _write_csv(root / "speakers.csv", SPEAKER_COLUMNS, speaker_rows)
    test_speech = [plan for plan in plans if plan.split == "test" and plan.speaker is not None]
    trials = _trials(test_speech, np.random.default_rng([seed, 3]))
    (root / "trials.txt").write_text("".join(f"{enrol} {test} {target}\n" for enrol, test, target in trials))
    # Written last: its presence means every file above is complete.
    marker.write_text(
        json.dumps(
            {"parameters": parameters, "labels": list(DEMO_LABELS), "espeak_ng_version": espeak_version()},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    return load_demo_corpus(root)


def _reusable_corpus(root: Path, parameters: dict) -> DemoCorpus | None:
    """The corpus already in `root` when it is complete and made with `parameters`; otherwise None,
    after removing a corpus made by this function with other parameters (or since damaged)."""
    marker = root / MARKER_NAME
    if not marker.is_file():
        return None
    corpus = load_demo_corpus(root)
    parts = (*corpus.manifests.values(), corpus.trials, corpus.speakers)
    if json.loads(marker.read_text())["parameters"] == parameters and all(path.is_file() for path in parts):
        return corpus
    marker.unlink()
    shutil.rmtree(root / "wav", ignore_errors=True)
    return None


def _render_clips(plans: list, root: Path, show_progress: bool) -> dict[str, list[dict[str, str]]]:
    """Synthesise and write every planned clip; its manifest rows by split."""
    rows: dict[str, list[dict[str, str]]] = {split: [] for split in SPLITS}
    for plan in tqdm(plans, desc="synthesising demo corpus", unit="clip", disable=not show_progress):
        audio, labels = _render(plan)
        path = root / plan.path
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, _to_pcm16(audio), SAMPLE_RATE, subtype="PCM_16")
        rows[plan.split].append(
            {
                "path": plan.path,
                "transcript": plan.transcript,
                "speaker": plan.speaker.speaker_id if plan.speaker is not None else "",
                "labels": LABEL_SEPARATOR.join(labels),
                "duration_s": f"{len(audio) / SAMPLE_RATE:.3f}",
                "split": plan.split,
            }
        )
    return rows


def load_demo_corpus(output_dir: str | Path) -> DemoCorpus:
    """The manifests, trial list and label list of a corpus that `synthesize_demo_corpus` finished."""
    root = Path(output_dir)
    marker = root / MARKER_NAME
    if not marker.is_file():
        raise FileNotFoundError(
            f"no finished demo corpus in {root} (missing {MARKER_NAME}); run synthesize_demo_corpus({str(root)!r}) first"
        )
    recorded = json.loads(marker.read_text())
    return DemoCorpus(
        root=root,
        manifests={split: root / f"{split}.csv" for split in SPLITS},
        trials=root / "trials.txt",
        speakers=root / "speakers.csv",
        labels=tuple(recorded["labels"]),
    )


def _parameters(
    seed: int,
    num_speakers: int,
    utterances_per_speaker: int,
    num_event_clips: int,
    num_dev_speakers: int,
    num_test_speakers: int,
    sentences: Sequence[str] | None,
) -> dict[str, object]:
    """Validated parameters as recorded in the completion marker."""
    if num_test_speakers < 2:
        raise ValueError(
            f"num_test_speakers must be at least 2 (non-target trials need two speakers); got {num_test_speakers}"
        )
    if num_dev_speakers < 0:
        raise ValueError(f"num_dev_speakers must be 0 or more; got {num_dev_speakers}")
    if num_speakers - num_dev_speakers - num_test_speakers < 1:
        raise ValueError(
            f"num_speakers ({num_speakers}) must exceed num_dev_speakers + num_test_speakers "
            f"({num_dev_speakers} + {num_test_speakers}) to leave training speakers"
        )
    if utterances_per_speaker < 2:
        raise ValueError(
            f"utterances_per_speaker must be at least 2 (target trials need two); got {utterances_per_speaker}"
        )
    if num_event_clips < 0:
        raise ValueError(f"num_event_clips must be 0 or more; got {num_event_clips}")
    sentences_sha256 = None
    if sentences is not None:
        if len(sentences) == 0 or any(not sentence.strip() for sentence in sentences):
            raise ValueError(
                "sentences must be a non-empty list of non-blank strings, or None for the built-in grammar"
            )
        sentences_sha256 = hashlib.sha256("\n".join(sentence.strip() for sentence in sentences).encode()).hexdigest()
    return {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "num_speakers": num_speakers,
        "utterances_per_speaker": utterances_per_speaker,
        "num_event_clips": num_event_clips,
        "num_dev_speakers": num_dev_speakers,
        "num_test_speakers": num_test_speakers,
        "sentences_sha256": sentences_sha256,
    }


def _speech_plans(
    speakers: list[SyntheticSpeaker],
    speaker_splits: dict[str, str],
    utterances_per_speaker: int,
    seed: int,
    sentences: Sequence[str] | None,
) -> list[_ClipPlan]:
    rng = np.random.default_rng([seed, 0])
    total = len(speakers) * utterances_per_speaker
    if sentences is None:
        transcripts = [sample_sentence(rng) for _ in range(total)]
    else:
        # Shuffled passes over the given sentences: each is used before any is repeated.
        passes = -(-total // len(sentences))
        order = np.concatenate([rng.permutation(len(sentences)) for _ in range(passes)])
        transcripts = [sentences[index].strip() for index in order[:total]]
    plans = []
    for speaker_index, speaker in enumerate(speakers):
        split = speaker_splits[speaker.speaker_id]
        for utterance in range(utterances_per_speaker):
            clip_number = speaker_index * utterances_per_speaker + utterance
            plans.append(
                _ClipPlan(
                    path=f"wav/{split}/speech/{speaker.speaker_id}-{utterance:03d}.wav",
                    split=split,
                    seed=(seed, 1, clip_number),
                    speaker=speaker,
                    transcript=transcripts[clip_number],
                )
            )
    return plans


def _event_plans(num_event_clips: int, seed: int) -> list[_ClipPlan]:
    """Event-only clips, main classes in turn; each class split about 80/10/10 on its own."""
    rng = np.random.default_rng([seed, 2])
    events = [SOUND_EVENT_CLASSES[index % len(SOUND_EVENT_CLASSES)] for index in range(num_event_clips)]
    splits = ["train"] * num_event_clips
    for label in SOUND_EVENT_CLASSES:
        indices = rng.permutation([index for index, event in enumerate(events) if event == label])
        # Round half up, so that a class with 5 clips already gives one to dev and one to test.
        num_test = int(len(indices) * EVENT_CLIP_TEST_FRACTION + 0.5)
        num_dev = int(len(indices) * EVENT_CLIP_DEV_FRACTION + 0.5)
        for position, index in enumerate(indices):
            splits[index] = "test" if position < num_test else "dev" if position < num_test + num_dev else "train"
    return [
        _ClipPlan(
            path=f"wav/{splits[index]}/events/event-{index:04d}.wav",
            split=splits[index],
            seed=(seed, 2, index),
            event=events[index],
        )
        for index in range(num_event_clips)
    ]


def _render(plan: _ClipPlan) -> tuple[np.ndarray, list[str]]:
    """The clip's audio (float32, 16 kHz, peak below 0 dBFS) and its labels in AudioSet order."""
    rng = np.random.default_rng(list(plan.seed))
    if plan.speaker is not None:
        speaker = plan.speaker
        speech = synthesize(
            plan.transcript, speaker.voice, speaker.rate_wpm, speaker.pitch, speaker.pitch_range, SAMPLE_RATE
        )
        lead, trail = (int(padding_s * SAMPLE_RATE) for padding_s in rng.uniform(*SPEECH_PADDING_S, size=2))
        clip = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
        reference_level = _active_rms(speech)
        num_events = int(rng.choice(len(EVENTS_PER_SPEECH_CLIP_PROBABILITIES), p=EVENTS_PER_SPEECH_CLIP_PROBABILITIES))
        events = [str(label) for label in rng.choice(SOUND_EVENT_CLASSES, size=num_events, replace=False)]
        for label in events:
            duration_s = min(rng.uniform(*EVENT_IN_MIXTURE_DURATION_S), len(clip) / SAMPLE_RATE)
            _mix_event(clip, label, duration_s, reference_level / _db_to_ratio(rng.uniform(*SPEECH_TO_EVENT_DB)), rng)
        labels = [SPEECH_LABEL, *events]
        noise_db = rng.uniform(*SPEECH_TO_NOISE_DB)
    else:
        clip = generate_sound_event(plan.event, rng.uniform(*EVENT_CLIP_DURATION_S), rng, SAMPLE_RATE).astype(
            np.float64
        )
        reference_level = _active_rms(clip)
        labels = [plan.event]
        if rng.random() < SECOND_EVENT_PROBABILITY:
            second = str(rng.choice([label for label in SOUND_EVENT_CLASSES if label != plan.event]))
            duration_s = min(rng.uniform(*EVENT_IN_MIXTURE_DURATION_S), len(clip) / SAMPLE_RATE)
            _mix_event(
                clip, second, duration_s, reference_level * _db_to_ratio(rng.uniform(*SECOND_EVENT_RELATIVE_DB)), rng
            )
            labels.append(second)
        noise_db = rng.uniform(*EVENT_TO_NOISE_DB)
    clip += background_noise(rng, len(clip), SAMPLE_RATE) * reference_level / _db_to_ratio(noise_db)
    clip *= _db_to_ratio(rng.uniform(*PEAK_DBFS)) / (np.max(np.abs(clip)) + 1e-12)
    return clip.astype(np.float32), sorted(labels, key=DEMO_LABELS.index)


def _mix_event(clip: np.ndarray, label: str, duration_s: float, level: float, rng: np.random.Generator) -> None:
    """Add an event of `label` at active RMS `level`, at a random place inside `clip` (in place)."""
    event = generate_sound_event(label, duration_s, rng, SAMPLE_RATE)
    start = int(rng.integers(0, len(clip) - len(event) + 1))
    clip[start : start + len(event)] += event * (level / _active_rms(event))


def _active_rms(audio: np.ndarray, frame_s: float = 0.02, floor_db: float = 30.0) -> float:
    """RMS over the 20 ms frames within `floor_db` of the loudest: the level of the sound, not of its pauses."""
    frame = int(frame_s * SAMPLE_RATE)
    num_frames = max(1, len(audio) // frame)
    energies = np.mean(np.asarray(audio[: num_frames * frame], dtype=np.float64).reshape(num_frames, -1) ** 2, axis=1)
    active = energies[energies >= energies.max() * 10 ** (-floor_db / 10)]
    return float(np.sqrt(np.mean(active))) + 1e-12


def _db_to_ratio(decibels: float) -> float:
    return float(10 ** (decibels / 20))


def _to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)


def _trials(test_speech: list[_ClipPlan], rng: np.random.Generator) -> list[tuple[str, str, int]]:
    """Per test utterance as enrolment: one target trial (same speaker) and one non-target trial."""
    by_speaker: dict[str, list[str]] = {}
    for plan in test_speech:
        by_speaker.setdefault(plan.speaker.speaker_id, []).append(plan.path)
    trials = []
    for plan in test_speech:
        speaker_id = plan.speaker.speaker_id
        same = [path for path in by_speaker[speaker_id] if path != plan.path]
        others = [path for other_id, paths in by_speaker.items() if other_id != speaker_id for path in paths]
        trials.append((plan.path, same[int(rng.integers(len(same)))], 1))
        trials.append((plan.path, others[int(rng.integers(len(others)))], 0))
    return trials


def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
