"""Untrusted files: nothing the package reads can make it run code.

Covered elsewhere and not repeated here: the icefall converter refuses pickled code
(tests/test_convert_icefall.py::test_pickled_code_in_a_checkpoint_is_refused); remote code runs only with
`trust_remote_code=True` (tests/test_save_load.py::test_remote_code_is_not_run_without_trust_remote_code); manifest
entries cannot leave the corpus root unless `allow_absolute_paths` (tests/test_data_corpus.py::
test_manifest_entry_escaping_the_root_is_rejected and ::test_absolute_manifest_path_is_rejected_unless_allowed).
"""

import ast
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from training_mt2kd.recipe import finetune

from .conftest import DATA_DIR, REPO_ROOT

PACKAGE_SOURCES = ["configuration_mt2kd", "modeling_mt2kd", "processing", "training", "hub_upload.py"]
CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"
FSDD_TRAIN = {
    "name": "fsdd", "source": str(DATA_DIR / "fsdd" / "metadata.csv"), "split": "train", "task": "asr",
    "columns": {"audio": "path", "id": "path", "text": "transcript", "duration": "duration_s", "split": "split"},
}
UNPICKLERS = {"pickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
UNPICKLING = {"load", "loads", "Unpickler", "open"}


def package_modules() -> list[Path]:
    paths = []
    for source in PACKAGE_SOURCES:
        path = REPO_ROOT / source
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return paths


def keyword(call: ast.Call, name: str):
    for argument in call.keywords:
        if argument.arg == name:
            return ast.literal_eval(argument.value)
    return None


def unsafe_loads(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """The calls in one module that could unpickle code, as `file:line what`."""
    where = path.relative_to(root)
    offences = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNPICKLERS:
            offences += [f"{where}:{node.lineno} imports {node.module}.{alias.name}" for alias in node.names
                         if alias.name in UNPICKLING]
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        call = (ast.unparse(node.func.value), node.func.attr)
        if call[0] in UNPICKLERS and call[1] in UNPICKLING:
            offences.append(f"{where}:{node.lineno} calls {call[0]}.{call[1]}")
        if call == ("torch", "load") and keyword(node, "weights_only") is not True:
            offences.append(f"{where}:{node.lineno} calls torch.load without weights_only=True")
        if call in {("np", "load"), ("numpy", "load")} and keyword(node, "allow_pickle"):
            offences.append(f"{where}:{node.lineno} calls np.load with allow_pickle")
        if call == ("torch.jit", "load"):
            offences.append(f"{where}:{node.lineno} loads TorchScript")
    return offences


def test_the_package_deserialises_nothing_that_can_run_code():
    offences = [offence for path in package_modules() for offence in unsafe_loads(path)]
    assert not offences, "\n".join(offences)


def test_the_source_scan_finds_an_unsafe_load(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("import pickle, torch\npickle.loads(b'')\ntorch.load('x.pt')\ntorch.load('y.pt', weights_only=True)\n")
    assert [offence.split(" ", 1)[1] for offence in unsafe_loads(module, tmp_path)] == [
        "calls pickle.loads", "calls torch.load without weights_only=True",
    ]


class CodeInAPickle:
    """Unpickling this runs code: it writes a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("run")
    finetune.main(finetune_arguments(output_dir, 2))
    return output_dir / "checkpoints" / "checkpoint-2"


def finetune_arguments(output_dir: Path, max_steps: int, *extra: str) -> list[str]:
    return ["--config", str(CONFIG), "--output_dir", str(output_dir), "--max_steps", str(max_steps),
            "--set", f"data.train={json.dumps([FSDD_TRAIN])}", "--set", "training.save_every_steps=2", *extra]


def test_checkpoints_hold_only_safetensors_json_and_tensor_pickles(checkpoint):
    assert sorted(path.name for path in checkpoint.iterdir()) == [
        "custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl", "model.safetensors", "optimizer.bin",
        "random_states_0.pkl", "trainer_state.json",
    ]


@pytest.mark.parametrize(
    "poisoned",
    [
        "custom_checkpoint_0.pkl",  # the Eden schedule: accelerate unpickles it with weights_only=False
        "custom_checkpoint_1.pkl",  # the model average: likewise
        "optimizer.bin",
        "random_states_0.pkl",  # accelerate would only log "Could not load random states" and resume inexactly
    ],
)
def test_resuming_from_a_tampered_checkpoint_refuses_it_without_running_its_code(tmp_path, checkpoint, poisoned):
    tampered = tmp_path / "checkpoint-2"
    shutil.copytree(checkpoint, tampered)
    marker = tmp_path / "code-ran"
    torch.save({"state": CodeInAPickle(marker)}, tampered / poisoned)

    with pytest.raises(pickle.UnpicklingError, match=poisoned):
        finetune.main(finetune_arguments(tmp_path / "resumed", 3, "--resume_from", str(tampered)))
    assert not marker.exists()
