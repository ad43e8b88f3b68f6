"""Data plumbing shared by both stages: corpora → mixture → sampler → collator, and the student's
features (noise + fbank + SpecAugment) computed from the clean waveforms of a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from processing_mt2kd import MT2KDFeatureExtractor
from training_mt2kd.data import (
    AudioCollator,
    BufferedBucketBatcher,
    CorpusMixture,
    CorpusSpec,
    DataHealth,
    DurationBucketSampler,
    LabelSet,
    MixedCorpusSampler,
    NoiseMixer,
    SpeakerIndex,
    SpecAugment,
    load_corpus,
)

from training_mt2kd.data.corpus import corpus_spec_from_dict
from training_mt2kd.recipe.config import RunConfig
from training_mt2kd.tasks import get_task, tasks as task_rows


def process_state() -> PartialState:
    """This process' rank, world size and device. Honours ACCELERATE_USE_CPU, as `Accelerator`
    does (a bare `PartialState()` would not, and a CPU multi-process launch would then run as N
    independent single-process runs)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def corpus_spec(values: dict, config: RunConfig) -> CorpusSpec:
    """A `CorpusSpec` from one corpus entry of the YAML: distilled unless it names a task, with the
    run's duration bounds unless it sets its own."""
    return corpus_spec_from_dict(
        values, "a corpus entry", task="distill", min_duration_s=config.data.min_duration_s,
        max_duration_s=config.data.max_duration_s,
    )


def load_mixture(entries: Sequence[dict], config: RunConfig, health: DataHealth) -> CorpusMixture:
    if not entries:
        raise ValueError("data.train lists no corpus; add at least one corpus entry to the config")
    corpora = []
    for values in entries:
        spec = corpus_spec(values, config)
        corpora.append((spec, load_corpus(spec, health)))
    return CorpusMixture(corpora)


def task_column(mixture: CorpusMixture, task: str) -> list:
    """All label values (the task table's `label_role` column) of the corpora that train `task`,
    e.g. every transcript or speaker name (to build a tokenizer or a speaker index)."""
    column = get_task(task).label_role
    return [value for spec, dataset in zip(mixture.specs, mixture.datasets) if task in spec.tasks for value in dataset[column]]


def mixture_sampler(mixture: CorpusMixture, config: RunConfig, state: PartialState) -> MixedCorpusSampler:
    """Per corpus a length-bucketed batch source (a buffered one for streaming corpora, which are
    never downloaded whole), mixed by weight; identical on every rank, then sharded."""
    data, seed = config.data, config.training.seed
    sources = []
    for corpus, (spec, dataset) in enumerate(zip(mixture.specs, mixture.datasets)):
        common = dict(seed=seed + corpus, rank=state.process_index, world_size=state.num_processes)
        if spec.streaming:
            sources.append(BufferedBucketBatcher(dataset, data.max_batch_duration_s, data.stream_buffer_size, **common))
        else:
            sources.append(
                DurationBucketSampler(mixture.durations(corpus), data.max_batch_duration_s, data.num_buckets, **common)
            )
    if data.steps_per_epoch is None and any(spec.streaming for spec in mixture.specs):
        raise ValueError("a streaming training corpus has no length: set data.steps_per_epoch")
    return MixedCorpusSampler(sources, mixture.weights, seed=seed, steps_per_epoch=data.steps_per_epoch)


@dataclass
class TrainingData:
    mixture: CorpusMixture
    sampler: MixedCorpusSampler
    collator: AudioCollator
    health: DataHealth
    valid_batches: Callable[[], Iterable[dict]] | None


def build_training_data(
    config: RunConfig,
    label_names: Sequence[str],
    speaker_index: SpeakerIndex | None = None,
    mixture: CorpusMixture | None = None,
    health: DataHealth | None = None,
    vocabularies: dict | None = None,
) -> TrainingData:
    """Training mixture (loaded unless given) and sampler (sharded by this process' rank),
    collator (with the tasks' `vocabularies`, e.g. {"asr": tokenizer}) and validation batches."""
    state = process_state()
    health = health if health is not None else DataHealth()
    mixture = mixture if mixture is not None else load_mixture(config.data.train, config, health)
    sampler = mixture_sampler(mixture, config, state)
    collator = AudioCollator(
        label_set=LabelSet(list(label_names)),
        speaker_index=speaker_index,
        max_duration_s=config.data.max_duration_s,
        vocabularies=vocabularies,
    )
    valid_batches = None
    if config.data.valid:
        valid_mixture = load_mixture(config.data.valid, config, DataHealth())
        valid_sampler = MixedCorpusSampler.for_mixture(
            valid_mixture, config.data.max_batch_duration_s, 1, seed=0, rank=state.process_index,
            world_size=state.num_processes,
        )
        num_valid_batches = valid_sampler.steps_per_epoch

        def valid_batches() -> Iterable[dict]:
            valid_sampler.load_state_dict(valid_sampler_start)
            for _, keys in zip(range(num_valid_batches), valid_sampler):
                yield collator(valid_mixture.__getitems__(keys))

        valid_sampler_start = valid_sampler.state_dict()
    return TrainingData(mixture, sampler, collator, health, valid_batches)


class StudentFeatures:
    """Clean waveforms → the student's input: optional noise, fbank, optional SpecAugment.

    Augmentation runs only in training (the model's `training` flag is passed in) and draws from
    the global torch RNG, which checkpoints save and restore.
    """

    def __init__(self, config: RunConfig, health: DataHealth):
        self.feature_extractor = MT2KDFeatureExtractor()
        self.spec_augment = SpecAugment(enabled=config.augment.spec_augment)
        self.noise_mixer = None
        if config.augment.noise:
            spec = corpus_spec({"task": "distill", **config.augment.noise}, config)
            self.noise_mixer = NoiseMixer(
                load_corpus(spec, health),
                tuple(config.augment.snr_db),
                probability=config.augment.noise_probability,
                health=health,
            )

    def __call__(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, samples) 16 kHz + lengths → input_features (batch, frames, 80), attention_mask."""
        if training and self.noise_mixer is not None:
            waveforms = self.noise_mixer(waveforms, lengths)
        features = self.feature_extractor(
            [waveform[: int(length)].numpy() for waveform, length in zip(waveforms, lengths)],
            sampling_rate=self.feature_extractor.sampling_rate,
            return_tensors="pt",
        )
        input_features, attention_mask = features["input_features"], features["attention_mask"]
        self.spec_augment.train(training)
        return self.spec_augment(input_features, attention_mask), attention_mask


def placeholder_batch(batch: dict, sample_rate: int = 16000) -> dict:
    """A batch whose examples all failed to decode becomes one second of silence with every task
    mask off, so this process still runs a (zero-loss) step and stays in step with the others."""
    if batch["waveforms"].shape[0] > 0:
        return batch
    filled = dict(batch)
    filled["waveforms"] = torch.zeros(1, sample_rate)
    filled["waveform_lengths"] = torch.tensor([sample_rate])
    filled["task_masks"] = {task: torch.zeros(1, dtype=torch.bool) for task in batch["task_masks"]}
    filled["text"] = [""]
    filled["ids"] = ["<placeholder>"]
    for task in task_rows():
        labels = batch.get(task.batch_key)
        if labels is not None:
            filled[task.batch_key] = torch.full((1, *labels.shape[1:]), task.blank_label, dtype=labels.dtype)
    return filled
