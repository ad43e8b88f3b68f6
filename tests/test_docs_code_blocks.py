"""Every ```python and ```bash block of README.md and docs/*.md runs, as a reader would run it.

Each block runs in a fresh interpreter (python) or `bash -e` in a temporary working folder shared by the blocks of
one document, in document order. Stand-ins for the names the documents use (no text of a block is rewritten):

- `demo_output/model`, `mt2kd-66m`: a tiny random multi-task model folder (mt2kd-tiny, a 30-piece BPE tokenizer,
  config.json with `custom_pipelines` as the demo saves it) in place of a trained or converted model;
- `speech.wav`: a 16 kHz LibriVox clip of ../shared/data; `dog_bark.ogg`: ESC-50's dog bark re-encoded as Ogg Vorbis;
- `icefall-mt2kd/data/lang_bpe_500/bpe.model`: the tiny model's tokenizer in place of the authors' BPE-500 model;
- `training/`, `tests/`, `hub_upload.py`, `pytest.ini`: links to the repository's own.

A block that needs a GPU, the network, an hour of training or files that only the authors have is listed in
`NOT_AS_WRITTEN` with the reason, and runs in a reduced form (its command's `--help`) or, for fragments that continue
the surrounding text, is named with the test that runs the same code. A block this table does not name runs as
written: a new example in the documents must run or be listed here.

model_card.md (and training/release/model_card.md, a link to it) is a Jinja template: tests/test_release_hub.py
renders it for a released tiny model and runs its python and bash blocks against a local Hub.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transformers.utils import logging

from training_mt2kd.release.remote_code import add_custom_pipelines

from .conftest import DATA_DIR, REPO_ROOT
from .test_pipelines import save_tiny_mt2kd_folder

DOCUMENTS = ["README.md", *sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^(?P<indent>[ \t]*)```(?P<language>python|bash)[ \t]*\n(?P<code>.*?)^[ \t]*```", re.M | re.S)
TIMEOUT_S = 240


@dataclass(frozen=True)
class NotAsWritten:
    """Why a block does not run as written, and what runs instead (`reduced`) or which test covers it."""

    reason: str
    reduced: str | None = None
    covered_by: str | None = None


# (document, text that identifies the block) -> what runs instead, and why.
NOT_AS_WRITTEN = {
    ("README.md", "pip install -e '.[dev,demo,export]'"): NotAsWritten(
        "installs packages (network) and trains for ~14 minutes", reduced="mt2kd demo --help",
        covered_by="tests/test_demo.py"),
    ("README.md", "python -m pytest -q tests"): NotAsWritten(
        "the whole suite (~20 minutes, this test included)",
        reduced="python -m pytest --collect-only -q tests/test_processor.py"),
    ("README.md", "pip install -e '.[real-teachers]'"): NotAsWritten(
        "installs packages (network) and trains with real teachers", reduced="mt2kd demo --help",
        covered_by="tests/test_real_teachers.py"),
    ("README.md", "convert_icefall --checkpoint epoch-30.pt"): NotAsWritten(
        "needs the authors' 66M checkpoint", reduced="python -m modeling_mt2kd.convert_icefall --help",
        covered_by="tests/test_convert_icefall.py, tests/test_release.py (tiny parity checkpoint)"),
    ("README.md", 'pipeline("mt2kd-streaming-asr", model="causal-model")'): NotAsWritten(
        "fragment: `microphone_pieces()` is the reader's own audio source and `causal-model` a causal model folder",
        covered_by="tests/test_streaming.py"),
    ("README.md", "accelerate launch training/kd.py"): NotAsWritten(
        "trains the 66M model on GPUs for days",
        reduced="python training/kd.py --help && python training/finetune.py --help && "
        "python training/evaluate.py --help",
        covered_by="tests/test_kd.py, tests/test_finetune.py, tests/test_evaluation_cli.py"),
    ("docs/export.md", "pip install -e '.[export]'"): NotAsWritten(
        "installs packages (network); FOLDER / ONNX_DIR are placeholders", reduced="mt2kd export-onnx --help",
        covered_by="tests/test_export_onnx.py"),
    ("docs/export.md", 'export_onnx("FOLDER", "ONNX_DIR"'): NotAsWritten(
        "FOLDER and ONNX_DIR are placeholders", covered_by="tests/test_export_onnx.py"),
    ("docs/export.md", "sherpa_onnx.OnlineRecognizer.from_transducer("): NotAsWritten(
        "fragment: ONNX_DIR is a placeholder for a causal model's export and `pieces` the reader's audio source",
        covered_by="tests/test_export_sherpa_onnx_streaming.py"),
    ("docs/release.md", "python hub_upload.py FOLDER --repo-id user/name"): NotAsWritten(
        "synopsis with placeholders", reduced="python hub_upload.py --help"),
    ("docs/release.md", "--checkpoint icefall-mt2kd/exp/CHECKPOINT.pt"): NotAsWritten(
        "needs the authors' checkpoint (a download)", reduced="python -m modeling_mt2kd.convert_icefall --help",
        covered_by="tests/test_release.py"),
    ("docs/release.md", "--output mt2kd-66m-results.json --device cuda"): NotAsWritten(
        "evaluates on LibriSpeech, AudioSet and VoxCeleb with a GPU", reduced="python training/evaluate.py --help",
        covered_by="tests/test_evaluation_cli.py"),
    ("docs/release.md", "--eval-results mt2kd-66m-results.json"): NotAsWritten(
        "uploads to the Hub (network, a token)", reduced="python hub_upload.py --help",
        covered_by="tests/test_release_hub.py (a local Hub)"),
    ("docs/streaming.md", "state = model.mt2kd.init_streaming_state"): NotAsWritten(
        "fragment: `model` and `features_chunk` come from the text around it",
        covered_by="tests/test_streaming_parity.py"),
}


@dataclass(frozen=True)
class Block:
    document: str
    index: int
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.document}[{self.index}]"

    def not_as_written(self) -> NotAsWritten | None:
        matches = [entry for (document, text), entry in NOT_AS_WRITTEN.items()
                   if document == self.document and text in self.code]
        assert len(matches) <= 1, f"{self.name} matches {len(matches)} entries of NOT_AS_WRITTEN"
        return matches[0] if matches else None


def _dedent(code: str, indent: str) -> str:
    return "".join(line[len(indent):] if line.startswith(indent) else line for line in code.splitlines(True))


def code_blocks() -> list[Block]:
    blocks = []
    for document in DOCUMENTS:
        text = (REPO_ROOT / document).read_text(encoding="utf-8")
        for index, match in enumerate(BLOCK.finditer(text)):
            code = _dedent(match["code"], match["indent"])
            blocks.append(Block(document, index, match["language"], code))
    return blocks


BLOCKS = code_blocks()


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory) -> Path:
    logging.set_verbosity_error()
    folder = save_tiny_mt2kd_folder(tmp_path_factory.mktemp("tiny") / "model")
    add_custom_pipelines(folder)
    return folder


_workspaces: dict[str, Path] = {}


@pytest.fixture()
def workspace(request, tmp_path_factory, tiny_model_folder) -> Path:
    """The working folder of one document's blocks (shared by them, created at its first block)."""
    document = request.node.callspec.params["block"].document
    if document not in _workspaces:
        folder = tmp_path_factory.mktemp("docs")
        shutil.copytree(tiny_model_folder, folder / "demo_output" / "model")
        shutil.copytree(tiny_model_folder, folder / "mt2kd-66m")
        bpe = folder / "icefall-mt2kd" / "data" / "lang_bpe_500" / "bpe.model"
        bpe.parent.mkdir(parents=True)
        shutil.copy(tiny_model_folder / "bpe.model", bpe)
        speech = DATA_DIR / "speech_misc/librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav"
        shutil.copy(speech, folder / "speech.wav")
        dog, rate = soundfile.read(DATA_DIR / "sound_events/esc50/1-100032-A-0.wav", dtype="float32")
        soundfile.write(folder / "dog_bark.ogg", np.asarray(dog), rate, format="OGG", subtype="VORBIS")
        for name in ("training", "tests", "hub_upload.py", "pytest.ini"):
            (folder / name).symlink_to(REPO_ROOT / name)
        _workspaces[document] = folder
    return _workspaces[document]


def run(block: Block, folder: Path, command: str | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    if command is not None or block.language == "bash":
        argv = ["bash", "-e", "-o", "pipefail", "-c", command or block.code]
    else:
        argv = [sys.executable, "-c", block.code]
    return subprocess.run(argv, cwd=folder, env=environment, capture_output=True, text=True, timeout=TIMEOUT_S)


def test_documents_have_code_blocks():
    documents = {block.document for block in BLOCKS}
    assert {"README.md", "docs/release.md"} <= documents
    assert any(block.language == "python" and block.not_as_written() is None for block in BLOCKS)


def test_every_entry_of_the_table_names_a_block():
    for document, text in NOT_AS_WRITTEN:
        assert any(block.document == document and text in block.code for block in BLOCKS), (document, text)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_code_block_runs(block, workspace):
    entry = block.not_as_written()
    if entry is not None and entry.reduced is None:
        assert entry.covered_by, f"{block.name} is not run ({entry.reason}): name the test that covers it"
        return  # listed in NOT_AS_WRITTEN with its reason and the test that runs the same code
    result = run(block, workspace, entry.reduced if entry is not None else None)
    assert result.returncode == 0, f"{block.name} failed:\n{block.code}\n--- stderr ---\n{result.stderr[-4000:]}"
