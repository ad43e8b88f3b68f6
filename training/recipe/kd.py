"""Stage 1: multi-teacher knowledge distillation (no labels).

    accelerate launch training/kd.py --config training/configs/mt2kd_66m_stage1.yaml \
        [--output_dir DIR] [--resume_from DIR] [--push_to_hub --hub_model_id ID]

Frozen teachers label the clean audio: a Whisper encoder (frames, 50 Hz stacked to the student's
25 Hz), an audio tagger (clip probabilities over the student's labels) and a speaker model
(utterance embeddings). The student sees the noisy, SpecAugmented audio and learns all three at
once. Targets are computed on the fly or read from a cache (`teachers.cache_dir`) that is filled
first. The final `MT2KDForDistillation` folder is `OUTPUT_DIR/final`.
"""

from __future__ import annotations

import sys
from pathlib import Path


import torch
from accelerate.utils import set_seed

from modeling_mt2kd import MT2KDForDistillation

from training_mt2kd.recipe.config import RunConfig, build_argument_parser, load_run_config
from training_mt2kd.release.provenance import run_metadata, write_training_metadata
from training_mt2kd.recipe.loop import Trainer
from training_mt2kd.recipe.model_setup import build_model_config
from training_mt2kd.data.stage_data import StudentFeatures, build_training_data, placeholder_batch, process_state
from training_mt2kd.recipe.target_cache import TargetCache, TargetCacheWriter, compute_targets, extract_targets
from training_mt2kd.recipe.teachers import Teacher, load_teacher

def load_teachers(config: RunConfig, label_names: list[str], device: torch.device) -> list[Teacher]:
    """The configured teachers, frozen, on `device` (bf16 autocast is applied by the adapters on CUDA)."""
    options = config.teachers
    teachers = []
    if options.whisper:  # the frame-level ASR target: a Whisper encoder, or any encoder (kind: frame-encoder)
        whisper = dict(options.whisper)
        kind = whisper.pop("kind", "whisper")
        teachers.append(load_teacher(kind, whisper.pop("name_or_path"), device=device, **whisper))
    if options.tagging:
        tagging = dict(options.tagging)
        teachers.append(
            load_teacher("audio-classification", tagging.pop("name_or_path"), device=device, labels=label_names, **tagging)
        )
    if options.speaker:
        speaker = dict(options.speaker)
        kind = speaker.pop("kind", "xvector")
        teachers.append(load_teacher(kind, speaker.pop("name_or_path"), device=device, **speaker))
    if not teachers:
        raise ValueError("stage 1 needs at least one teacher under `teachers:` (whisper, tagging or speaker)")
    return teachers


def teacher_facts(teachers: list[Teacher], device: torch.device, frames_per_frame: int) -> dict:
    """Student config values the teachers dictate (Whisper width, speaker embedding size), read
    from their targets on one second of silence."""
    silence = torch.zeros(1, 16000, device=device)
    targets = compute_targets(teachers, silence, torch.tensor([16000], device=device))
    facts = {}
    if "whisper" in targets:
        facts["whisper_dim"] = targets["whisper"].values.shape[-1] // frames_per_frame
    if "speaker" in targets:
        facts["speaker_embedding_dim"] = targets["speaker"].values.shape[-1]
    return facts


def fill_target_cache(cache_dir: str, teachers: list[Teacher], data, device: torch.device) -> TargetCache:
    """Extract the targets of every training utterance not yet cached (each process its own shard)."""
    state = process_state()
    with TargetCacheWriter(cache_dir, rank=state.process_index) as writer:
        def batches():
            for corpus, dataset in enumerate(data.mixture.datasets):
                indices = list(range(state.process_index, len(dataset), state.num_processes))
                for start in range(0, len(indices), 16):
                    batch = data.collator(data.mixture.__getitems__([(corpus, i) for i in indices[start : start + 16]]))
                    if batch["waveforms"].shape[0]:
                        yield batch["ids"], batch["waveforms"].to(device), batch["waveform_lengths"].to(device)

        extract_targets(teachers, batches(), writer)
    state.wait_for_everyone()
    return TargetCache(cache_dir)


def main(argv: list[str] | None = None) -> Path:
    args = build_argument_parser(__doc__).parse_args(argv)
    config = load_run_config(args)
    set_seed(config.training.seed)
    device = process_state().device

    base_config = build_model_config(config.model)
    label_names = [base_config.id2label[i] for i in range(base_config.num_labels)]
    teachers = load_teachers(config, label_names, device)
    model_config = build_model_config(
        config.model, **teacher_facts(teachers, device, base_config.teacher_frames_per_frame)
    )
    model = MT2KDForDistillation(model_config)

    data = build_training_data(config, label_names)
    features = StudentFeatures(config, data.health)
    cache = fill_target_cache(config.teachers.cache_dir, teachers, data, device) if config.teachers.cache_dir else None

    def make_inputs(batch: dict, batch_count: float) -> dict:
        batch = placeholder_batch(batch)
        waveforms, lengths = batch["waveforms"], batch["waveform_lengths"]
        if cache is not None and batch["ids"] != ["<placeholder>"]:
            targets = cache.get(batch["ids"], device=device)
        else:
            targets = compute_targets(teachers, waveforms.to(device), lengths.to(device))
        input_features, attention_mask = features(waveforms, lengths, training=model.training)
        distill = batch["task_masks"]["distill"].to(device)
        inputs = {"input_features": input_features.to(device), "attention_mask": attention_mask.to(device)}
        for key, argument in (("whisper", "whisper"), ("tagging", "tagging"), ("speaker", "speaker")):
            if key in targets:
                inputs[f"{argument}_targets"] = targets[key].values.to(device)
                inputs[f"{argument}_mask"] = distill
        return inputs

    def save_artifacts(folder: Path) -> None:
        features.feature_extractor.save_pretrained(folder)
        # What the model card says this model was trained on and distilled from.
        teachers = {role: getattr(config.teachers, role) for role in ("whisper", "tagging", "speaker")}
        write_training_metadata(folder, run_metadata("stage1", list(config.data.train), teachers))

    trainer = Trainer(
        config, model, make_inputs, data.mixture, data.sampler, data.collator,
        valid_batches=data.valid_batches, data_health=data.health,
        save_artifacts=save_artifacts,
    )
    return trainer.train(resume_from=args.resume_from)


if __name__ == "__main__":
    main()
