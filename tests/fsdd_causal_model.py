"""One tiny CAUSAL model trained on the FSDD digits and exported to ONNX, shared by the sherpa-onnx tests.

Training is the expensive part (~1.5 minutes on 2 cores), so the session fixture `fsdd_causal_export`
(tests/conftest.py) builds it once for both tests/test_export_sherpa_onnx.py (offline recognizer, CTC, tagging,
speaker: a causal model exported offline is its simulated-streaming forward) and
tests/test_export_sherpa_onnx_streaming.py (online recognizer: the streaming encoder file).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .conftest import DATA_DIR, REPO_ROOT

FSDD = DATA_DIR / "fsdd"
TRAINING_STEPS = 160  # ~1.5 minutes on 2 cores. At 100 steps the tokens emitted on the six recordings sat on a knife edge
# (2 or 3 distinct ones depending on 1e-7 differences in the arithmetic); 160 steps learn the digits clearly.
CHUNK_SIZE, LEFT_CONTEXT = 8, 32  # 160 ms chunks: a one-second digit is decoded in several chunks
CAUSAL = {
    "vocab_size": 20, "causal": True, "chunk_size": CHUNK_SIZE, "left_context_frames": LEFT_CONTEXT,
    "training_chunk_sizes": [8, 16, 32, -1], "training_left_context_frames": [32, 64, -1],
}
TAG_NAMES = {0: "Speech", 1: "Music", 2: "Dog", 3: "Siren, alarm"}


@dataclass(frozen=True)
class ExportedModel:
    """folder: the trained model (+ an untrained tagging head) with its processor; output: `export_onnx`'s folder;
    report: its `ExportReport`."""

    folder: Path
    output: Path
    report: object


def evaluation_recordings() -> list[Path]:
    """5 held-out FSDD recordings (different digits and speakers) and one 16 kHz AN4 sentence."""
    rows = [row for row in csv.DictReader(open(FSDD / "metadata.csv")) if row["split"] == "test"]
    paths = [FSDD / row["path"] for row in rows[::60]]
    return paths + [DATA_DIR / "an4" / "wav" / "fclc" / "an147-fclc-b.wav"]


def train_on_fsdd(run_dir: Path, model_overrides: dict | None = None) -> Path:
    """A tiny stage-2 model trained `TRAINING_STEPS` steps on the FSDD digits (ASR + speaker); its final folder."""
    from training_mt2kd.recipe import finetune  # noqa: PLC0415  (heavy; only when a test asks for the model)

    corpus = {
        "name": "fsdd", "source": str(FSDD / "metadata.csv"), "split": "train", "task": "asr+speaker",
        "columns": {"audio": "path", "id": "path", "text": "transcript", "speaker": "speaker",
                    "duration": "duration_s", "split": "split"},
    }
    overrides = ["--set", f"model.overrides={json.dumps(model_overrides)}"] if model_overrides else []
    return finetune.main([
        "--config", str(REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"), "--output_dir", str(run_dir),
        "--max_steps", str(TRAINING_STEPS), "--set", f"data.train={json.dumps([corpus])}",
        *overrides, "--set", "training.save_every_steps=100000",
    ])


def train_and_export(run_dir: Path, model_dir: Path, output_dir: Path) -> ExportedModel:
    """Train the causal model, give it a tagging head (random, seed 0) so all four heads are exported, export it."""
    from modeling_mt2kd import MT2KDForMultiTask  # noqa: PLC0415
    from processing_mt2kd import MT2KDProcessor  # noqa: PLC0415
    from training_mt2kd.export import export_onnx  # noqa: PLC0415

    trained = train_on_fsdd(run_dir, model_overrides=CAUSAL)
    torch.manual_seed(0)
    model = MT2KDForMultiTask.from_pretrained(
        trained, use_audio_tagging=True, num_labels=len(TAG_NAMES), id2label=TAG_NAMES
    )
    model.save_pretrained(model_dir)
    MT2KDProcessor.from_pretrained(trained).save_pretrained(model_dir)
    report = export_onnx(model_dir, output_dir)
    return ExportedModel(model_dir, output_dir, report)
