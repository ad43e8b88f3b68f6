"""Shared test fixtures: paths to the real recordings and the authors'-code reference numbers."""

import os
from pathlib import Path

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
