"""The demo's test-split evaluation: training/evaluate.py on each model, the label-prior floor for
mAP, and the per-trial scores that a DET curve needs."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training_mt2kd.data import CorpusSpec, LabelSet, load_corpus
from training_mt2kd.evaluation.metrics import cosine_scores, load_metric, read_trial_list

from training_mt2kd.evaluation.config import EvaluationConfig, evaluation_config_from_dict
from training_mt2kd.evaluation.runner import EvaluatedModel, embed_examples
from training_mt2kd.demo.task_manifests import TaskManifests
from training_mt2kd.tasks import tasks as task_rows

DATASET = "mt2kd-demo"
SPLIT = "test"
HEADLINE_METRICS = {task.name: task.metric for task in task_rows()}
"""The one number per task that the report compares (percent): the task table's headline metric
(WER, macro mAP, EER)."""


def evaluation_config(manifests: TaskManifests, tasks: Sequence[str], options: dict[str, Any]) -> EvaluationConfig:
    """evaluate.py's configuration for `tasks` on the test split: WER over the speech clips (with
    `options["decoding"]`), mAP over every clip, EER on the corpus' trial list."""
    entries = []
    common = {"dataset": DATASET, "split": SPLIT}
    if "asr" in tasks:
        entries.append(
            {
                "task": "asr",
                **common,
                **manifests.evaluation_source("speech", SPLIT, "asr"),
                "decoding": list(options["decoding"]),
            }
        )
    if "tagging" in tasks:
        entries.append({"task": "tagging", **common, **manifests.evaluation_source(None, SPLIT, "tagging")})
    if "speaker" in tasks:
        entries.append(
            {"task": "speaker", **common, "trials": str(manifests.corpus.trials), "root": str(manifests.corpus.root)}
        )
    values = {"batch_duration_s": options["batch_duration_s"], "evaluations": entries}
    return evaluation_config_from_dict(values, manifests.corpus.root, where="demo evaluation")


def headline_metrics(results: dict[str, Any], reported_decoding: str) -> dict[str, float]:
    """Task → its headline value (percent) in evaluate.py's results JSON; ASR with `reported_decoding`."""
    metrics = {}
    for entry in results["results"]:
        task = entry["task"]
        if entry["metric"] != HEADLINE_METRICS[task] or entry.get("decoding", reported_decoding) != reported_decoding:
            continue
        metrics[task] = float(entry["value"])
    return metrics


@dataclass(frozen=True)
class LabelPrior:
    """The floor for mAP: every clip scored with each label's frequency in the training clips.

    Attributes:
        frequencies: label → share of training clips that carry it.
        mean_average_precision: macro mAP (percent) of that constant scoring on the test clips.
    """

    frequencies: dict[str, float]
    mean_average_precision: float


def label_prior(manifests: TaskManifests) -> LabelPrior:
    labels = LabelSet(list(manifests.corpus.labels))
    train = _multi_hot(manifests, "train", labels)
    test = _multi_hot(manifests, SPLIT, labels)
    frequencies = train.mean(axis=0)
    result = load_metric("mt2kd_map").compute(predictions=np.broadcast_to(frequencies, test.shape), references=test)
    return LabelPrior(dict(zip(labels.names, frequencies.tolist())), 100.0 * result["mean_average_precision"])


def _multi_hot(manifests: TaskManifests, split: str, labels: LabelSet) -> np.ndarray:
    """(clips, labels) multi-hot tags of every clip of `split`."""
    with open(manifests.corpus.manifests[split], newline="", encoding="utf-8") as file:
        return np.stack([labels.encode(row["labels"])[0] for row in csv.DictReader(file)])


def trial_scores(
    model: EvaluatedModel, manifests: TaskManifests, batch_duration_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(cosine score, is-target) of every trial of the corpus' trial list, (num_trials,) each: the
    same scoring as evaluate.py's EER, kept per trial for a DET curve."""
    source = manifests.evaluation_source("speech", SPLIT, "speaker")
    spec = CorpusSpec(name=DATASET, task="speaker", min_duration_s=None, max_duration_s=None, **source)
    embeddings = embed_examples(model, load_corpus(spec), batch_duration_s, description="speaker embeddings (DET)")
    trials = read_trial_list(manifests.corpus.trials)
    enrollment = torch.stack([embeddings[trial.enrollment] for trial in trials])
    test = torch.stack([embeddings[trial.test] for trial in trials])
    return cosine_scores(enrollment, test).numpy(), np.asarray([trial.is_target for trial in trials])
