"""The training loop shared by stage 1 (kd.py) and stage 2 (finetune.py), on Accelerate.

One process per device (DDP through `accelerate launch`; gloo on CPU). Each step runs
`gradient_accumulation_steps` batches; a step whose loss or gradient is not finite on any rank is
skipped on every rank without touching the weights, the buffers (batch-norm statistics) or the
optimiser state. Checkpoints are written to a temporary folder and renamed, so an interrupted save
never replaces a good checkpoint, and they hold everything needed to continue exactly: model,
optimiser, scheduler, model average, random states and the sampler's position.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from accelerate.utils import load as accelerate_load
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from training_mt2kd.recipe.config import RunConfig
from training_mt2kd.recipe.optim import ModelAverager, build_optimizer, build_scheduler

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE = "trainer_state.json"


@dataclass
class TrainerState:
    """Loop position and counters, saved in every checkpoint."""

    step: int = 0
    sampler: dict = field(default_factory=dict)
    module_states: dict = field(default_factory=dict)
    skipped_nonfinite_steps: int = 0
    consecutive_nonfinite_steps: int = 0
    data_health: dict = field(default_factory=dict)


def _call_model(model: torch.nn.Module, **inputs: Any) -> Any:
    return model(**inputs)


class NonFiniteTrainingError(RuntimeError):
    pass


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter, to compare replicas bit for bit. (Buffers such as BatchNorm
    running statistics are rank-local between forward passes under DDP; rank 0's are saved.)"""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in `folder/checkpoints` (or `folder` itself if it is one)."""
    folder = Path(folder)
    if (folder / TRAINER_STATE).is_file():
        return folder
    candidates = [
        path for path in (folder / "checkpoints").glob(f"{CHECKPOINT_PREFIX}*") if (path / TRAINER_STATE).is_file()
    ]
    return max(candidates, key=lambda path: int(path.name.removeprefix(CHECKPOINT_PREFIX)), default=None)


class Trainer:
    """Runs the optimisation; the stage scripts supply the model and how a batch becomes inputs.

    Args:
        config: the run configuration.
        model: an MT2KD model whose forward returns an output with `loss` and `*_loss` fields.
        make_inputs: `(batch dict, batch_count) -> model keyword arguments` (features,
            augmentation, teacher targets, labels).
        train_dataset, train_sampler, collate_fn: map-style dataset, batch sampler (with `epoch`,
            `state_dict`/`load_state_dict`), and the collator. The sampler's position is exact
            with `data.num_workers=0`; with workers it runs ahead by the prefetched batches, which
            a resumed run then skips.
        valid_batches: callable returning an iterable of validation batches, or None.
        data_health: object with `record_events` / `to_dict` (the corpus health counters).
        save_artifacts: `(folder) -> None` writes the processor files next to a saved model.
        forward: `(model, **inputs) -> output` runs the (possibly wrapped) model on the inputs;
            default `model(**inputs)` (stage 2 passes `training_mt2kd.tasks.forward_with_tasks`).
    """

    def __init__(
        self,
        config: RunConfig,
        model: torch.nn.Module,
        make_inputs: Callable[[dict, float], dict],
        train_dataset,
        train_sampler,
        collate_fn: Callable,
        valid_batches: Callable[[], Iterable[dict]] | None = None,
        data_health: Any = None,
        save_artifacts: Callable[[Path], None] | None = None,
        forward: Callable[..., Any] | None = None,
    ):
        self.config = config
        options = config.training
        self.output_dir = Path(options.output_dir)
        self.accelerator = Accelerator(
            mixed_precision=options.mixed_precision,
            log_with="tensorboard",
            project_dir=str(self.output_dir),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        )
        optim = config.optim
        self.optimizer = build_optimizer(model, optim.name, optim.lr, optim.weight_decay, optim.lr_scales or None)
        self.scheduler = build_scheduler(self.optimizer, optim.lr_batches, optim.lr_epochs, optim.warmup_batches)
        self.averager = ModelAverager(model, options.average_period) if options.average_period > 0 else None
        self.model, self.optimizer = self.accelerator.prepare(model, self.optimizer)
        checkpointed = [self.scheduler] + ([self.averager] if self.averager is not None else [])
        self.accelerator.register_for_checkpointing(*checkpointed)
        self.make_inputs = make_inputs
        self.train_dataset = train_dataset
        self.sampler = train_sampler
        self.collate_fn = collate_fn
        self.valid_batches = valid_batches
        self.data_health = data_health
        self.save_artifacts = save_artifacts
        self.forward = forward if forward is not None else _call_model
        self.state = TrainerState()
        self.history: list[dict] = []

    # ----------------------------------------------------------------------------------- data
    def _batches(self) -> Iterator[dict]:
        """Training batches forever (epoch after epoch), from the sampler's current position."""
        while True:
            loader = DataLoader(
                self.train_dataset,
                batch_sampler=self.sampler,
                collate_fn=self.collate_fn,
                num_workers=self.config.data.num_workers,
                # Its own generator: creating the iterator must not draw from the global RNG,
                # whose state checkpoints restore.
                generator=torch.Generator().manual_seed(self.config.training.seed),
            )
            for batch in loader:
                if self.data_health is not None and batch.get("health_events"):
                    self.data_health.record_events(batch["health_events"])
                yield batch

    # --------------------------------------------------------------------------------- resume
    def resume(self, checkpoint: str | Path) -> None:
        """Restore everything saved by `save_checkpoint` (use the run's own config and data)."""
        path = latest_checkpoint(checkpoint)
        if path is None:
            raise FileNotFoundError(f"no complete checkpoint under {checkpoint}")
        _check_checkpoint_pickles(path)
        self.accelerator.load_state(str(path))
        saved = json.loads((path / TRAINER_STATE).read_text())
        self.state = TrainerState(**saved)
        self.sampler.load_state_dict(self.state.sampler)
        modules = dict(self.accelerator.unwrap_model(self.model).named_modules())
        for name, module_state in self.state.module_states.items():
            modules[name].load_training_state(module_state)
        if self.data_health is not None and self.state.data_health:
            self.data_health.merge(self.state.data_health)
        self.history = _read_history(self.output_dir / "history.jsonl", up_to_step=self.state.step)
        logger.info("resumed from %s at step %d", path, self.state.step)

    def save_checkpoint(self) -> Path:
        """Atomic: write to a temporary folder, then rename; keep the newest `keep_checkpoints`."""
        checkpoints = self.output_dir / "checkpoints"
        final = checkpoints / f"{CHECKPOINT_PREFIX}{self.state.step}"
        temporary = checkpoints / f".tmp-{CHECKPOINT_PREFIX}{self.state.step}"
        accelerator = self.accelerator
        if accelerator.is_main_process and temporary.exists():
            shutil.rmtree(temporary)
        accelerator.wait_for_everyone()
        self.state.sampler = self.sampler.state_dict()
        # Non-weight training state of modules (e.g. Whiten's adaptive check rate).
        self.state.module_states = {
            name: module.training_state()
            for name, module in self.accelerator.unwrap_model(self.model).named_modules()
            if hasattr(module, "training_state")
        }
        if self.data_health is not None:
            self.state.data_health = self.data_health.to_dict()
        accelerator.save_state(str(temporary))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (temporary / TRAINER_STATE).write_text(json.dumps(asdict(self.state), indent=1))
            if final.exists():  # this step saved again (a run resumed from an older checkpoint)
                _discard_checkpoint(final)
            temporary.rename(final)
            complete = sorted(
                (p for p in checkpoints.glob(f"{CHECKPOINT_PREFIX}*")),
                key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)),
            )
            for old in complete[: -self.config.training.keep_checkpoints]:
                _discard_checkpoint(old)
        accelerator.wait_for_everyone()
        return final

    # ----------------------------------------------------------------------------------- step
    def _forward(self, batch: dict) -> Any:
        batch_count = self.state.step + self.config.training.batch_count_offset
        inputs = self.make_inputs(batch, batch_count)
        with self.accelerator.autocast():
            return self.forward(self.model, **inputs, batch_count=batch_count)

    def _all_ranks_finite(self, loss: torch.Tensor) -> bool:
        finite = bool(torch.isfinite(loss.detach()).all())
        if finite and self.accelerator.mixed_precision != "fp16":  # fp16: the grad scaler handles overflow
            finite = all(
                bool(torch.isfinite(p.grad).all()) for p in self.model.parameters() if p.grad is not None
            )
        flag = torch.tensor([1.0 if finite else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() == self.accelerator.num_processes)

    def train_step(self, batches: Iterator[dict]) -> dict[str, float]:
        """One optimiser step over `gradient_accumulation_steps` batches; returns mean losses."""
        accumulation = self.config.training.gradient_accumulation_steps
        totals: dict[str, float] = {}
        loss_sum = None
        self.model.train()
        # Forward passes update buffers (batch-norm statistics): a skipped step puts them back, so it leaves no
        # trace, and a NaN batch cannot poison the statistics that evaluation uses.
        buffers = [buffer.detach().clone() for buffer in self.model.buffers()]
        for micro_step in range(accumulation):
            batch = next(batches)
            context = self.accelerator.no_sync(self.model) if micro_step < accumulation - 1 else _null_context()
            with context:
                outputs = self._forward(batch)
                self.accelerator.backward(outputs.loss / accumulation)
            loss_sum = outputs.loss.detach() if loss_sum is None else loss_sum + outputs.loss.detach()
            for name, value in outputs.items():
                if name.endswith("loss") and value is not None:
                    totals[name] = totals.get(name, 0.0) + float(value.detach()) / accumulation
        if self._all_ranks_finite(loss_sum):
            if self.config.optim.name == "adamw" and self.config.optim.clip_grad_norm:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_grad_norm)
            self.optimizer.step()
            self.state.consecutive_nonfinite_steps = 0
        else:
            with torch.no_grad():
                for buffer, saved in zip(self.model.buffers(), buffers):
                    buffer.copy_(saved)
            self.state.skipped_nonfinite_steps += 1
            self.state.consecutive_nonfinite_steps += 1
            logger.warning("step %d: non-finite loss or gradient; step skipped", self.state.step)
            if self.state.consecutive_nonfinite_steps >= self.config.training.max_nonfinite_steps:
                raise NonFiniteTrainingError(
                    f"{self.state.consecutive_nonfinite_steps} consecutive steps had a non-finite loss or gradient "
                    f"(last at step {self.state.step}); lower the learning rate, check the data, or use bf16/fp32"
                )
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        self.scheduler.step_batch(self.state.step)
        if self.averager is not None:
            self.averager.update(self.accelerator.unwrap_model(self.model), self.state.step)
        return totals

    # ------------------------------------------------------------------------------- validate
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.valid_batches is None:
            return {}
        self.model.eval()
        totals: dict[str, float] = {}
        count = 0
        for batch in self.valid_batches():
            outputs = self._forward(batch)
            count += 1
            for name, value in outputs.items():
                if name.endswith("loss") and value is not None:
                    totals[f"valid_{name}"] = totals.get(f"valid_{name}", 0.0) + float(value)
        self.model.train()
        return {name: value / max(count, 1) for name, value in totals.items()}

    # ----------------------------------------------------------------------------------- run
    def train(self, resume_from: str | Path | None = None) -> Path:
        """Run to `max_steps`; returns the final model folder (`output_dir/final`)."""
        options = self.config.training
        accelerator = self.accelerator
        if resume_from is not None:
            self.resume(resume_from)
        accelerator.init_trackers("tensorboard")
        batches = self._batches()
        progress = tqdm(
            total=options.max_steps, initial=self.state.step, desc="training", disable=not accelerator.is_main_process
        )
        epoch = self.sampler.epoch
        while self.state.step < options.max_steps:
            losses = self.train_step(batches)
            if self.sampler.epoch != epoch:
                epoch = self.sampler.epoch
                self.scheduler.step_epoch(epoch)
            progress.update(1)
            step = self.state.step
            if step % options.log_every_steps == 0 or step == options.max_steps:
                record = {"step": step, "lr": self.scheduler.get_last_lr()[0], **losses}
                if options.valid_every_steps and step % options.valid_every_steps == 0:
                    record.update(self.validate())
                self._log(record)
                progress.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k == "loss"})
            if step % options.save_every_steps == 0 and step < options.max_steps:
                self.save_checkpoint()
        progress.close()
        final_record = {"step": self.state.step, **self.validate()}
        if len(final_record) > 1:
            self._log(final_record)
        self.save_checkpoint()
        return self._save_final_model()

    def _log(self, record: dict) -> None:
        self.history.append(record)
        self.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])
        if self.accelerator.is_main_process:
            with open(self.output_dir / "history.jsonl", "a", encoding="utf-8") as history:
                history.write(json.dumps(record) + "\n")

    def _save_final_model(self) -> Path:
        """Save the final weights to `final/` (and, once the running average has been updated,
        the averaged weights to `averaged/`, each with the processor files) and a run summary."""
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        model = accelerator.unwrap_model(self.model)
        digests = accelerator.gather_for_metrics([weights_digest(model)], use_gather_object=True)
        final = self.output_dir / "final"
        averaged_folder = None
        if accelerator.is_main_process:
            model.save_pretrained(final)
            if self.save_artifacts is not None:
                self.save_artifacts(final)
            if self.averager is not None and self.averager.last_update_batch > 0:
                averaged_folder = self.output_dir / "averaged"
                averaged = type(model)(model.config)
                averaged.load_state_dict(model.state_dict())
                self.averager.copy_to(averaged)
                averaged.save_pretrained(averaged_folder)
                if self.save_artifacts is not None:
                    self.save_artifacts(averaged_folder)
            summary = {
                "steps": self.state.step,
                "skipped_nonfinite_steps": self.state.skipped_nonfinite_steps,
                "data_health": self.data_health.to_dict() if self.data_health is not None else {},
                "num_processes": accelerator.num_processes,
                "weights_digest_per_rank": digests,
                "averaged_model": str(averaged_folder) if averaged_folder else None,
                "last_losses": self.history[-1] if self.history else {},
            }
            (self.output_dir / "run_summary.json").write_text(json.dumps(summary, indent=1))
            if self.config.training.push_to_hub:
                from training_mt2kd.release.release import push_model_folder

                push_model_folder(final, self.config.training.hub_model_id, private=self.config.training.hub_private)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return final


def _check_checkpoint_pickles(checkpoint: Path) -> None:
    """Read every pickle of a checkpoint with `weights_only=True` before Accelerate loads it.

    Accelerate unpickles the states of registered objects (`custom_checkpoint_*.pkl`: the schedule and
    the model average) with `weights_only=False`, which would run any code a tampered checkpoint holds,
    and it skips unreadable random states with a log line, which would make the resume silently
    inexact. Here both are errors that name the file.
    """
    for path in sorted([*checkpoint.glob("*.pkl"), *checkpoint.glob("*.bin")]):
        try:
            accelerate_load(path, map_location="cpu")  # weights_only=True, plus the numpy types of RNG states
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(
                f"{path} holds more than tensors and plain values, and loading it could run code; resume only "
                "from checkpoints this trainer wrote"
            ) from error
        except Exception as error:  # any unreadable file makes the resume wrong
            raise pickle.UnpicklingError(f"cannot read {path} ({error}); resume from another checkpoint") from error


def _discard_checkpoint(folder: Path) -> None:
    """Delete a checkpoint, marking it incomplete first: a kill half-way through leaves a folder that
    `latest_checkpoint` skips (and a later save deletes), never one that still looks complete."""
    (folder / TRAINER_STATE).unlink(missing_ok=True)
    shutil.rmtree(folder)


class _null_context:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _read_history(path: Path, up_to_step: int) -> list[dict]:
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [record for record in records if record["step"] <= up_to_step]
    path.write_text("".join(json.dumps(record) + "\n" for record in kept))
    return kept


