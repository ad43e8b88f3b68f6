"""Bad numbers: a step with a non-finite loss or gradient is skipped without touching the weights,
the normalisation statistics or the optimiser state; it is counted in the run summary; and a run where it persists
stops with `NonFiniteTrainingError` and a message that says what to do."""

import copy
import json

import pytest
import torch

from modeling_mt2kd import MT2KDForMultiTask
from training_mt2kd.recipe import finetune
from training_mt2kd.data import stage_data
from training_mt2kd.recipe.loop import NonFiniteTrainingError, Trainer, latest_checkpoint

from .conftest import DATA_DIR, REPO_ROOT

CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"
FSDD_TRAIN = {
    "name": "fsdd", "source": str(DATA_DIR / "fsdd" / "metadata.csv"), "split": "train", "task": "asr+speaker",
    "columns": {"audio": "path", "id": "path", "text": "transcript", "speaker": "speaker", "duration": "duration_s",
                "split": "split"},
}
BAD_STEP = 2


def finetune_arguments(output_dir, max_steps: int, *extra: str) -> list[str]:
    return ["--config", str(CONFIG), "--output_dir", str(output_dir), "--max_steps", str(max_steps),
            "--set", f"data.train={json.dumps([FSDD_TRAIN])}", *extra]


class NaNGradient(torch.autograd.Function):
    """Identity forward, NaN gradient backward: a finite loss whose gradient overflowed."""

    @staticmethod
    def forward(ctx, values):
        return values.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, float("nan"))


class Steps:
    """Spy on `Trainer.train_step`: which step runs, and the model and optimiser state around chosen steps."""

    def __init__(self, recorded: set[int]):
        self.recorded = recorded
        self.current = -1
        self.before: dict[int, tuple[dict, dict]] = {}
        self.after: dict[int, tuple[dict, dict]] = {}

    @staticmethod
    def snapshot(trainer: Trainer) -> tuple[dict, dict]:
        model = {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()}
        optimizer = copy.deepcopy(trainer.optimizer.state_dict())
        for group in optimizer["param_groups"]:
            group.pop("lr")  # the schedule's rate, which moves with the step count whether or not a step is taken
        return model, optimizer

    def wrap(self, train_step):
        def spy(trainer, batches):
            self.current = trainer.state.step
            if self.current in self.recorded:
                self.before[self.current] = self.snapshot(trainer)
            result = train_step(trainer, batches)
            if self.current in self.recorded:
                self.after[self.current] = self.snapshot(trainer)
            return result

        return spy


def inject(kind: str, steps: Steps, bad_steps, monkeypatch) -> None:
    """Make the training steps in `bad_steps` non-finite in the way `kind` names."""
    if kind == "nan features":  # the input itself: the forward pass (and its batch-norm statistics) sees NaN
        features = stage_data.StudentFeatures.__call__

        def nan_features(self, waveforms, lengths, training):
            input_features, attention_mask = features(self, waveforms, lengths, training)
            if training and steps.current in bad_steps:
                input_features = torch.full_like(input_features, float("nan"))
            return input_features, attention_mask

        monkeypatch.setattr(stage_data.StudentFeatures, "__call__", nan_features)
        return
    forward = MT2KDForMultiTask.forward

    def bad_forward(self, *args, **kwargs):
        outputs = forward(self, *args, **kwargs)
        if self.training and steps.current in bad_steps:
            outputs.loss = outputs.loss * float("nan") if kind == "nan loss" else NaNGradient.apply(outputs.loss)
        return outputs

    monkeypatch.setattr(MT2KDForMultiTask, "forward", bad_forward)


def assert_same_state(first: tuple[dict, dict], second: tuple[dict, dict]) -> None:
    (first_model, first_optimizer), (second_model, second_optimizer) = first, second
    assert first_model.keys() == second_model.keys()
    for name in first_model:
        assert torch.equal(first_model[name], second_model[name]), name
    assert_equal_nested(first_optimizer, second_optimizer, "optimizer")


def assert_equal_nested(first, second, where: str) -> None:
    """Equal tensors (bit for bit), numbers and strings, through nested dicts and lists."""
    assert type(first) is type(second), where
    if isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            assert_equal_nested(first[key], second[key], f"{where}[{key!r}]")
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second), where
        for index, (one, other) in enumerate(zip(first, second)):
            assert_equal_nested(one, other, f"{where}[{index}]")
    elif isinstance(first, torch.Tensor):
        assert torch.equal(first, second), where
    else:
        assert first == second, where


@pytest.mark.parametrize("kind", ["nan loss", "nan gradient", "nan features"])
def test_a_non_finite_step_is_skipped_without_touching_weights_statistics_or_optimizer(tmp_path, monkeypatch, kind):
    steps = Steps(recorded={BAD_STEP, BAD_STEP + 1})
    monkeypatch.setattr(Trainer, "train_step", steps.wrap(Trainer.train_step))
    inject(kind, steps, {BAD_STEP}, monkeypatch)

    final = finetune.main(finetune_arguments(tmp_path / "run", BAD_STEP + 2))

    assert_same_state(steps.before[BAD_STEP], steps.after[BAD_STEP])
    good_before, good_after = steps.before[BAD_STEP + 1][0], steps.after[BAD_STEP + 1][0]
    assert any(not torch.equal(good_before[name], good_after[name]) for name in good_before)  # training goes on
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert summary["steps"] == BAD_STEP + 2 and summary["skipped_nonfinite_steps"] == 1
    model = MT2KDForMultiTask.from_pretrained(final)
    assert all(torch.isfinite(tensor).all() for tensor in model.state_dict().values())


def test_persistent_nan_stops_the_run_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    steps = Steps(recorded=set())
    monkeypatch.setattr(Trainer, "train_step", steps.wrap(Trainer.train_step))
    inject("nan loss", steps, range(3, 100), monkeypatch)

    with pytest.raises(NonFiniteTrainingError, match="3 consecutive steps had a non-finite loss or gradient") as error:
        finetune.main(finetune_arguments(
            tmp_path / "run", 20, "--set", "training.max_nonfinite_steps=3", "--set", "training.save_every_steps=2",
        ))

    assert "lower the learning rate" in str(error.value)
    assert steps.current == 5  # steps 3, 4 and 5 failed
    assert not (tmp_path / "run" / "final").exists() and not (tmp_path / "run" / "run_summary.json").exists()
    newest = latest_checkpoint(tmp_path / "run")
    assert newest.name == "checkpoint-4"
    state = json.loads((newest / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["skipped_nonfinite_steps"] == 1
