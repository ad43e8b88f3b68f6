"""The `mt2kd` command line: transcribe, tag, embed and verify files and folders, JSON out, errors per file."""

import argparse
import json
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile

from tests.test_pipelines import TAG_LABELS, save_tiny_mt2kd_folder
from training_mt2kd.cli import commands
from training_mt2kd.cli.main import main
from training_mt2kd.cli.commands import Command, load_commands
from training_mt2kd.cli.commands.audio_files import find_audio_files

# Real recordings of several formats, rates and channel layouts, placed in nested folders.
RECORDINGS = {
    "speakers/george/0_george_0.wav": "fsdd/recordings/0_george_0.wav",
    "speakers/george/1_george_0.wav": "fsdd/recordings/1_george_0.wav",
    "speakers/jackson/0_jackson_0.wav": "fsdd/recordings/0_jackson_0.wav",
    "speech/an4.wav": "an4/wav/fash/an253-fash-b.wav",
    "speech/more/ljspeech.wav": "speech_misc/ljspeech/LJ003-0182.wav",
    "events/bird.ogg": "sound_events/librosa/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg",
}


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return str(save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd")))


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory, data_dir):
    """The recordings (as links), a corrupt .wav, a 30 ms .flac too short for the encoder, and a non-audio file."""
    folder = tmp_path_factory.mktemp("audio")
    for name, recording in RECORDINGS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(data_dir / recording)
    (folder / "broken").mkdir()
    (folder / "broken/corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    soundfile.write(folder / "broken/too_short.flac", np.zeros(480, np.float32), 16000)
    (folder / "speech/notes.txt").write_text("not audio")
    return folder


def run_cli(capsys, *argv) -> tuple[int, dict]:
    status = main([str(arg) for arg in argv])
    return status, json.loads(capsys.readouterr().out)


def by_name(results: list[dict], key: str = "path") -> dict[str, dict]:
    return {result[key].rsplit("/", 1)[-1]: result for result in results}


def test_help_runs_as_a_module_in_a_subprocess():
    completed = subprocess.run(
        [sys.executable, "-m", "training_mt2kd.cli.main", "--help"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    for name in ("transcribe", "tag", "embed", "verify"):
        assert name in completed.stdout


@pytest.mark.parametrize("name", ["transcribe", "tag", "embed", "verify"])
def test_every_command_has_its_own_help(capsys, name):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out


def test_folders_are_searched_recursively_for_audio_files(audio_dir):
    files = find_audio_files([audio_dir / "speech", audio_dir / "missing.wav", audio_dir / "speech/an4.wav"])
    assert files == [
        str(audio_dir / "speech/an4.wav"),
        str(audio_dir / "speech/more/ljspeech.wav"),
        str(audio_dir / "missing.wav"),  # kept, to be reported as an error
    ]


def test_transcribe_reports_every_file_and_the_errors_of_bad_ones(capsys, model_folder, audio_dir):
    status, report = run_cli(capsys, "transcribe", "--model", model_folder, audio_dir, "--batch_size", 3)
    assert status == 0
    results = by_name(report["results"])
    assert set(results) == {name.rsplit("/", 1)[-1] for name in RECORDINGS} | {"corrupt.wav", "too_short.flac"}
    assert "cannot decode" in results["corrupt.wav"]["error"]
    assert "9 fbank frames" in results["too_short.flac"]["error"]  # its batch-mates still succeed
    assert all(isinstance(results[name]["text"], str) for name in results if "error" not in results[name])
    assert (report["succeeded"], report["failed"]) == (len(RECORDINGS), 2)


def test_transcribe_with_the_transducer_and_word_timestamps(tmp_path, capsys, model_folder, audio_dir):
    output = tmp_path / "out" / "transcripts.json"
    status = main([
        "transcribe", "--model", model_folder, str(audio_dir / "speech"), "--decoder", "transducer",
        "--decoding_method", "modified_beam_search", "--beam", "2", "--timestamps", "word", "--output", str(output),
    ])
    assert status == 0 and capsys.readouterr().out == ""
    report = json.loads(output.read_text())
    assert report["command"] == "transcribe" and report["failed"] == 0
    for result in report["results"]:
        assert [chunk["text"] for chunk in result["chunks"]] == result["text"].split()
        assert all(len(chunk["timestamp"]) == 2 for chunk in result["chunks"])


def test_tag_gives_top_k_labels_with_scores(capsys, model_folder, audio_dir):
    status, report = run_cli(capsys, "tag", "--model", model_folder, audio_dir / "events", "--top_k", 3)
    assert status == 0
    (result,) = report["results"]
    assert len(result["tags"]) == 3 and {tag["label"] for tag in result["tags"]} <= set(TAG_LABELS)
    scores = [tag["score"] for tag in result["tags"]]
    assert scores == sorted(scores, reverse=True) and all(0 < score < 1 for score in scores)


def test_embed_writes_one_embedding_per_file(capsys, model_folder, audio_dir):
    status, report = run_cli(capsys, "embed", "--model", model_folder, audio_dir / "speakers", "--batch_size", 2)
    assert status == 0 and report["succeeded"] == 3
    assert all(len(result["embedding"]) == 192 for result in report["results"])


def test_verify_scores_every_enrolment_file_against_every_test_file(capsys, model_folder, audio_dir):
    enrollment = audio_dir / "speakers/george/0_george_0.wav"
    status, report = run_cli(capsys, "verify", "--model", model_folder, enrollment, audio_dir / "speakers")
    assert status == 0
    results = by_name(report["results"], key="test")
    assert set(results) == {"0_george_0.wav", "1_george_0.wav", "0_jackson_0.wav"}
    assert results["0_george_0.wav"]["score"] == pytest.approx(1.0, abs=1e-5)
    assert report["threshold"] is None  # the tiny folder has no calibrated threshold: scores, no decisions
    assert all(result["same_speaker"] is None for result in report["results"])


def test_verify_a_trial_list_reports_bad_files_per_trial_and_the_equal_error_rate(
    tmp_path, capsys, model_folder, audio_dir
):
    trials = tmp_path / "trials.txt"
    trials.write_text(
        "speakers/george/0_george_0.wav speakers/george/1_george_0.wav target\n"
        "speakers/george/0_george_0.wav speakers/jackson/0_jackson_0.wav nontarget\n"
        "speakers/george/0_george_0.wav broken/corrupt.wav nontarget\n"
    )
    status, report = run_cli(
        capsys, "verify", "--model", model_folder, "--trials", trials, "--audio_root", audio_dir, "--threshold", 0.5
    )
    assert status == 0 and report["threshold"] == 0.5
    first, second, broken = report["results"]
    assert (first["is_target"], second["is_target"]) == (True, False)
    assert "broken/corrupt.wav" in broken["error"] and "score" not in broken
    assert 0.0 <= report["equal_error_rate"] <= 1.0
    assert (report["succeeded"], report["failed"]) == (2, 1)


def test_exit_status_is_1_when_no_file_succeeds(capsys, model_folder, audio_dir):
    status, report = run_cli(capsys, "tag", "--model", model_folder, audio_dir / "broken", audio_dir / "missing.wav")
    assert status == 1
    assert report["succeeded"] == 0 and report["failed"] == 3
    assert "not found" in by_name(report["results"])["missing.wav"]["error"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["verify", "--model", "{model}", "only_one.wav"], "two paths"),
        (["tag", "--model", "{model}", "a.wav", "--top_k", "0"], "--top_k"),
        (["embed", "--model", "/no/such/model", "a.wav"], "/no/such/model"),
    ],
)
def test_bad_options_exit_with_status_2_and_a_message(capsys, model_folder, argv, message):
    assert main([arg.format(model=model_folder) for arg in argv]) == 2
    assert message in capsys.readouterr().err


def test_a_new_subcommand_needs_only_its_module_and_a_registry_entry(monkeypatch, capsys):
    module = types.ModuleType("training_mt2kd.cli.commands.greet")

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, default=2)

    module.COMMAND = Command(name="greet", help="say hello", add_arguments=add_arguments, run=lambda args: args.times)
    monkeypatch.setitem(sys.modules, "training_mt2kd.cli.commands.greet", module)
    monkeypatch.setattr(commands, "COMMAND_MODULES", (*commands.COMMAND_MODULES, "greet"))
    assert main(["greet", "--times", "3"]) == 3
    assert [command.name for command in load_commands()][-1] == "greet"


def test_two_commands_with_one_name_are_refused(monkeypatch):
    monkeypatch.setattr(commands, "COMMAND_MODULES", ("tag", "tag"))
    with pytest.raises(ValueError, match="'tag'"):
        load_commands()
