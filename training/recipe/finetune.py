"""Stage 2: multi-task supervised fine-tuning (and the paper's baselines from the same script).

    accelerate launch training/finetune.py --config training/configs/mt2kd_66m_stage2.yaml \
        [--init_from STAGE1_DIR] [--output_dir DIR] [--resume_from DIR] [--push_to_hub --hub_model_id ID]

Each corpus trains its own task (asr: transcripts → transducer + CTC; tagging: multi-hot labels →
BCE; speaker: speaker ids → cross-entropy or AAM) and each loss only sees its own corpus through
per-sample masks. The heads are those of the tasks in `data.train`, so one corpus gives a
single-task baseline and no `--init_from` gives multi-task from scratch. With `--init_from`, the
stage-1 encoder, tagging and speaker heads carry over; the Whisper projection is dropped; CTC,
transducer and speaker classifier start fresh. The final folder (`OUTPUT_DIR/final`) holds the
model, feature extractor, tokenizer and speaker index.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


import torch
from accelerate.utils import set_seed

from modeling_mt2kd import MT2KDForDistillation, MT2KDForMultiTask
from processing_mt2kd import MT2KDProcessor, MT2KDTokenizer, train_bpe_tokenizer
from training_mt2kd.data import DataHealth

from training_mt2kd.recipe.config import RunConfig, build_argument_parser, load_run_config
from training_mt2kd.release.provenance import run_metadata, write_training_metadata
from training_mt2kd.recipe.handover import carry_over_stage1
from training_mt2kd.recipe.loop import Trainer
from training_mt2kd.recipe.model_setup import build_model_config
from training_mt2kd.data.stage_data import StudentFeatures, build_training_data, load_mixture, placeholder_batch, process_state, task_column
from training_mt2kd.tasks import (
    attach_task_heads, forward_with_tasks, get_task, head_flag_values, model_inputs, parse_task_list, task_names,
)


def corpus_tasks(config: RunConfig) -> set[str]:
    """The tasks of the training corpora; each must be a row of the task table."""
    tasks = set()
    for entry in config.data.train:
        tasks.update(parse_task_list(str(entry.get("task", ""))))
    unknown = tasks - set(task_names())
    if unknown:
        raise ValueError(f"stage 2 trains the task table's tasks {list(task_names())}; got tasks {sorted(unknown)}")
    return tasks


def label_vocabularies(tasks: set[str], mixture, facts: dict) -> dict:
    """The vocabulary of each trained task that builds one from its training labels (the speaker
    index, ...); its size goes into `facts` under the row's `class_count_field`."""
    vocabularies = {}
    for name in sorted(tasks):
        task = get_task(name)
        if task.vocabulary_from_labels is None:
            continue
        vocabularies[name] = task.vocabulary_from_labels(task_column(mixture, name))
        if task.class_count_field:
            facts[task.class_count_field] = len(vocabularies[name])
    return vocabularies


def prepare_tokenizer(config: RunConfig, texts: list[str], vocab_size: int) -> MT2KDTokenizer:
    """The configured tokenizer, or a BPE model trained on the ASR transcripts (rank 0 trains, the
    others wait and load it)."""
    if config.model.tokenizer:
        return MT2KDTokenizer.from_pretrained(config.model.tokenizer)
    state = process_state()
    folder = Path(config.training.output_dir) / "tokenizer"
    if state.is_main_process and not (folder / "bpe.model").is_file():
        train_bpe_tokenizer(texts, folder, vocab_size=vocab_size)
    state.wait_for_everyone()
    return MT2KDTokenizer.from_pretrained(folder)


def build_stage2_model(
    config: RunConfig, tasks: set[str], mixture, stage1: MT2KDForDistillation | None
) -> tuple[MT2KDForMultiTask, dict]:
    """The multi-task model with the heads of `tasks` (the stage-1 weights carried over when given) and
    each task's vocabulary (tokenizer, speaker index, ...) by task name."""
    base = stage1.config.to_dict() if stage1 is not None else build_model_config(config.model).to_dict()
    facts: dict = head_flag_values(tasks, base)
    vocabularies = label_vocabularies(tasks, mixture, facts)
    if "asr" in tasks:
        tokenizer = prepare_tokenizer(config, task_column(mixture, "asr"), build_model_config(config.model).vocab_size)
        facts["vocab_size"] = len(tokenizer)
        facts["blank_id"] = tokenizer.blank_token_id
        vocabularies["asr"] = tokenizer
    if stage1 is not None:
        model_config = type(stage1.config).from_dict({**base, **config.model.overrides, **facts})
    else:
        model_config = build_model_config(config.model, **facts)
    model = MT2KDForMultiTask(model_config)
    attach_task_heads(model)
    if stage1 is not None:
        report = carry_over_stage1(model, stage1)
        if process_state().is_main_process:
            Path(config.training.output_dir).mkdir(parents=True, exist_ok=True)
            (Path(config.training.output_dir) / "handover.json").write_text(json.dumps(report.__dict__, indent=1))
    return model, vocabularies


def main(argv: list[str] | None = None) -> Path:
    parser = build_argument_parser(__doc__)
    parser.add_argument("--init_from", help="Stage-1 model folder (overrides model.init_from).")
    args = parser.parse_args(argv)
    config = load_run_config(args)
    if args.init_from:
        config.model.init_from = args.init_from
    set_seed(config.training.seed)
    state = process_state()
    tasks = corpus_tasks(config)

    stage1 = MT2KDForDistillation.from_pretrained(config.model.init_from) if config.model.init_from else None
    health = DataHealth()
    mixture = load_mixture(config.data.train, config, health)
    model, vocabularies = build_stage2_model(config, tasks, mixture, stage1)
    id2label = model.config.id2label
    label_names = [id2label[key] for key in sorted(id2label, key=int)]
    data = build_training_data(config, label_names, mixture=mixture, health=health, vocabularies=vocabularies)
    features = StudentFeatures(config, data.health)

    def make_inputs(batch: dict, batch_count: float) -> dict:
        batch = placeholder_batch(batch)
        device = state.device
        input_features, attention_mask = features(batch["waveforms"], batch["waveform_lengths"], training=model.training)
        inputs = {"input_features": input_features.to(device), "attention_mask": attention_mask.to(device)}
        return {**inputs, **model_inputs(batch, tasks, device)}

    def save_artifacts(folder: Path) -> None:
        tokenizer, speaker_index = vocabularies.get("asr"), vocabularies.get("speaker")
        # preprocessor_config.json in every case: evaluate.py, the ONNX export and the release read the
        # feature extractor from it; a processor adds processor_config.json and the tokenizer beside it.
        features.feature_extractor.save_pretrained(folder)
        if tokenizer is not None:
            MT2KDProcessor(features.feature_extractor, tokenizer).save_pretrained(folder)
        if speaker_index is not None:
            speaker_index.save(folder / "speaker_index.json")
        # What the model card says this model was trained on (and, through init_from, distilled from).
        write_training_metadata(
            folder, run_metadata("stage2", list(config.data.train), init_from=config.model.init_from)
        )

    trainer = Trainer(
        config, model, make_inputs, data.mixture, data.sampler, data.collator,
        valid_batches=data.valid_batches, data_health=data.health, save_artifacts=save_artifacts,
        forward=forward_with_tasks,
    )
    return trainer.train(resume_from=args.resume_from)


if __name__ == "__main__":
    main()
