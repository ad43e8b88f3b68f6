"""Shared test fixtures: paths to the real recordings and the authors'-code reference numbers."""

import os
import shutil
import tempfile
from pathlib import Path

# Tests write only to temporary folders: Hugging Face caches (datasets, hub, remote-code modules)
# go to a per-session folder, set before any test imports those libraries.
_CACHE_DIR = tempfile.mkdtemp(prefix="mt2kd-tests-hf-")
os.environ["HF_HOME"] = _CACHE_DIR
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE_DIR, "datasets")

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MT2KD_SHARED_DIR", REPO_ROOT.parent / "shared"))
DATA_DIR = SHARED_DIR / "data"
FIXTURES_DIR = SHARED_DIR / "fixtures"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """`../shared/data`: real recordings with metadata.csv per corpus (read-only)."""
    return DATA_DIR


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures`: reference outputs of the authors' code (read-only)."""
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def fsdd_causal_export(tmp_path_factory):
    """A tiny causal model trained once per session on the FSDD digits, exported to ONNX
    (`tests.fsdd_causal_model.ExportedModel`); shared by the offline and streaming sherpa-onnx tests."""
    from .fsdd_causal_model import train_and_export

    return train_and_export(
        tmp_path_factory.mktemp("fsdd-causal-run"), tmp_path_factory.mktemp("fsdd-causal-model"),
        tmp_path_factory.mktemp("fsdd-causal-onnx"),
    )


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
