"""Shared by the evaluation tests (training_mt2kd.evaluation config, runner, cli): fixtures, manifests, and a
scripted multi-task forward whose outputs the tests control."""

import csv
from pathlib import Path

import datasets
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from modeling_mt2kd.outputs import MultiTaskOutput
from processing_mt2kd import MT2KDFeatureExtractor, load_audio, train_bpe_tokenizer
from training_mt2kd.evaluation.runner import EvaluatedModel

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO_ROOT / "training" / "configs"
AN4_FILES = {  # four AN4 utterances of different lengths
    "wav/fclc/an146-fclc-b.wav": "n l n s one seventy five",
    "wav/fclc/an147-fclc-b.wav": "q e e a six",
    "wav/fclc/an148-fclc-b.wav": "erase o j t k s thirty five",
    "wav/fclc/an149-fclc-b.wav": "enter nine eighty nine",
}
RESULT_KEYS = {
    "wer": ["task", "dataset", "dataset_config", "split", "decoding", "metric", "value", "num_examples"],
    "map": ["task", "dataset", "dataset_config", "split", "metric", "value", "num_examples"],
    "eer": ["task", "dataset", "dataset_config", "split", "metric", "value", "num_examples"],
    "min_dcf": ["task", "dataset", "dataset_config", "split", "metric", "p_target", "value"],
}


@pytest.fixture(autouse=True)
def datasets_cache_in_tmp(tmp_path, monkeypatch):
    """Manifests are prepared by `datasets`; keep its cache out of the user's home."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, data_dir):
    with open(data_dir / "an4/metadata.csv", encoding="utf-8") as file:
        transcripts = [row["transcript"] for row in csv.DictReader(file)]
    return train_bpe_tokenizer(transcripts * 3, tmp_path_factory.mktemp("bpe"), vocab_size=40)


@pytest.fixture(scope="module")
def feature_extractor():
    return MT2KDFeatureExtractor()


def write_manifest(path: Path, rows: list[dict]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def fbank_frames(path: Path, feature_extractor: MT2KDFeatureExtractor) -> int:
    """The number of feature frames evaluation will compute for `path` (the key of scripted outputs)."""
    waveform, _ = load_audio(path, target_sample_rate=feature_extractor.sampling_rate)
    return feature_extractor.num_frames(waveform.shape[0])


class ScriptedForward:
    """A `MT2KDForMultiTask.forward` replacement: each utterance, recognised by its number of feature
    frames, gets the outputs written for it; `rows_seen` counts the utterances run."""

    def __init__(self, outputs_by_frames: dict[int, dict[str, torch.Tensor]]) -> None:
        self.outputs_by_frames = outputs_by_frames
        self.rows_seen = 0

    def __call__(self, input_features, attention_mask=None, **kwargs) -> MultiTaskOutput:
        rows = [self.outputs_by_frames[int(frames)] for frames in attention_mask.sum(dim=1)]
        self.rows_seen += len(rows)
        output = MultiTaskOutput(attention_mask=torch.ones(len(rows), 1, dtype=torch.long))
        if "ctc_logits" in rows[0]:
            logits = [row["ctc_logits"] for row in rows]
            output.ctc_logits = pad_sequence(logits, batch_first=True)
            lengths = torch.tensor([len(frames) for frames in logits])
            output.attention_mask = (torch.arange(output.ctc_logits.shape[1]) < lengths[:, None]).long()
        for name in ("tagging_logits", "speaker_embeddings"):
            if name in rows[0]:
                setattr(output, name, torch.stack([row[name] for row in rows]))
        return output


def scripted_model(
    monkeypatch, feature_extractor, tokenizer=None, id2label=None, outputs_by_frames=None
) -> tuple[EvaluatedModel, ScriptedForward]:
    overrides = {"vocab_size": len(tokenizer)} if tokenizer is not None else {}
    if id2label is not None:
        overrides["id2label"] = dict(enumerate(id2label))
    model = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", **overrides))
    forward = ScriptedForward(outputs_by_frames)
    monkeypatch.setattr(model, "forward", forward)
    return EvaluatedModel(model, feature_extractor, tokenizer), forward


def ctc_logits_spelling(text: str, tokenizer) -> torch.Tensor:
    """(frames, vocab) logits whose greedy CTC path is `text`: each token then a blank."""
    token_ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(token_ids, group_tokens=False) == text
    logits = torch.full((2 * len(token_ids) + 3, len(tokenizer)), -10.0)
    logits[:, tokenizer.blank_token_id] = 10.0
    for position, token_id in enumerate(token_ids):
        logits[2 * position, token_id] = 20.0
    return logits


def an4_manifest(tmp_path: Path) -> str:
    rows = [{"path": path, "transcript": text} for path, text in AN4_FILES.items()]
    return write_manifest(tmp_path / "an4.csv", rows)


@pytest.fixture(scope="module")
def random_multitask(tokenizer):
    torch.manual_seed(0)
    model = MT2KDForMultiTask(MT2KDConfig.from_preset("mt2kd-tiny", vocab_size=len(tokenizer))).eval()
    with torch.no_grad():  # make the untrained transducer emit tokens rather than only blanks
        model.transducer.joiner.output_linear.bias[model.config.blank_id] = -5.0
    return model


def save_model_folder(model, folder: Path, tokenizer=None) -> Path:
    model.save_pretrained(folder)
    MT2KDFeatureExtractor().save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder
