"""Check a model folder (or Hub repo id) and a device before building a pipeline on them: one clear line per fault.

transformers reports a broken folder from deep inside its loaders: a truncated `model.safetensors` as a
SafetensorError traceback, a missing `bpe.model` as `NOT_FOUND: "None"`, missing weights or an edited
`vocab_size` as an 80-line chain that ends in an unrelated Auto class, a missing absolute path as a malformed repo
id, a missing relative path as half a minute of Hub retries. [`load_mt2kd_pipeline`] checks first and raises
[`ModelLoadError`], one line naming the file and the fix; `mt2kd` turns it into exit status 2.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["TOKENIZER_TASKS", "ModelLoadError", "check_device", "check_model_source", "load_mt2kd_pipeline"]

# Tasks whose pipelines decode text, so the folder must hold the tokenizer's bpe.model.
TOKENIZER_TASKS = ("automatic-speech-recognition", "mt2kd-transducer-asr", "mt2kd-multitask")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
# A Hub repo id: "name" or "namespace/name", letters, digits, "-", "_", "."; no "--" or "..", at most 96 characters.
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_FOLDER_HINT = "pass a model folder written by save_pretrained (e.g. the OUTPUT/model of `mt2kd demo`) or a Hub repo id"


class ModelLoadError(ValueError):
    """A model folder, repo id or device that a pipeline cannot be built on; the message names the file and fix."""


def check_device(device: Any) -> None:
    """Refuse a CUDA device when torch sees no GPU (instead of a driver traceback at the first tensor)."""
    import torch

    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"device {device!r} asked for, but torch finds no CUDA GPU (torch.cuda.is_available() is False); "
            "use the CPU (--device cpu, or leave the device unset)"
        )


def check_model_source(model: str | os.PathLike, task: str | None = None) -> None:
    """Check that `model` is a loadable MT2KD folder for `task`, or a repo id the Hub can be asked about.

    A path that does not exist fails at once when it cannot be a repo id (absolute, `./`, `../`, `~`, more than one
    `/`, characters a repo id cannot hold, or `dir/name` where `dir` is a folder here). A well-formed repo id that
    is not in the local Hub cache fails at once when `HF_HUB_OFFLINE` is set; otherwise the Hub is asked once
    (no retries): unknown or unreachable fail here, the rest is left to transformers.

    Raises:
        ModelLoadError: the first fault found, naming the file and the fix.
    """
    source = os.fspath(model)
    folder = Path(source).expanduser()
    if folder.is_dir():
        check_model_folder(folder, task)
        return
    if folder.exists():
        raise ModelLoadError(f"model {source!r} is a file, not a folder; {_FOLDER_HINT}")
    if not _is_plausible_repo_id(source):
        raise ModelLoadError(f"model folder {source!r} does not exist (resolved: {folder.resolve()}); {_FOLDER_HINT}")
    if _in_hub_cache(source):
        return
    if _hub_offline():
        raise ModelLoadError(
            f"model {source!r} is not a folder here, and HF_HUB_OFFLINE is set so the Hub is not asked for it; "
            f"{_FOLDER_HINT} that is already downloaded"
        )
    _check_hub_repo(source)


def check_model_folder(folder: str | os.PathLike, task: str | None = None) -> None:
    """The checks of [`check_model_source`] on an existing folder: config, weights (readable, shaped as the config
    says), feature extractor, and the tokenizer when `task` decodes text."""
    folder = Path(folder)
    config = _read_config(folder)
    weights = _weights_file(folder)
    if weights.name == "model.safetensors":
        _check_weight_shapes(weights, config)
    if not (folder / "preprocessor_config.json").is_file():
        raise ModelLoadError(
            f"{folder / 'preprocessor_config.json'} is missing (the feature extractor); save it with "
            f"MT2KDFeatureExtractor().save_pretrained({str(folder)!r})"
        )
    if task in TOKENIZER_TASKS and not (folder / "bpe.model").is_file():
        raise ModelLoadError(
            f"{folder / 'bpe.model'} is missing: task {task!r} decodes text with this SentencePiece model; copy the "
            "bpe.model the model was trained with into the folder (MT2KDTokenizer(bpe_model).save_pretrained(folder))"
        )


def load_mt2kd_pipeline(task: str, model: str | os.PathLike, device: Any = None, **pipeline_kwargs: Any):
    """`transformers.pipeline(task, model=model, device=device, **pipeline_kwargs)` after [`check_device`] and
    [`check_model_source`]; what transformers still refuses comes back as one-line [`ModelLoadError`].

    The MT2KD tasks use the installed pipeline classes (a released folder names them as remote code too).
    """
    from transformers import pipeline
    from transformers.pipelines import PIPELINE_REGISTRY

    import processing_mt2kd  # noqa: F401 - registers the MT2KD model, front end and pipelines

    check_device(device)
    check_model_source(model, task)
    registered = PIPELINE_REGISTRY.supported_tasks.get(task)
    if registered is not None and task.startswith("mt2kd-"):
        pipeline_kwargs.setdefault("pipeline_class", registered["impl"])
    try:
        return pipeline(task, model=os.fspath(model), device=device, **pipeline_kwargs)
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        if isinstance(error, ModelLoadError):
            raise
        raise ModelLoadError(f"could not load model {os.fspath(model)!r} for {task!r}: {_first_line(error)}") from error


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; {_FOLDER_HINT} (a folder with config.json and model.safetensors)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path} is not valid JSON ({error}); restore it from the model's release") from None
    if not isinstance(config, dict) or config.get("model_type") != "mt2kd":
        found = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise ModelLoadError(f"{path} is not an MT2KD config (model_type {found!r}, expected 'mt2kd'); {_FOLDER_HINT}")
    return config


def _weights_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    others = sorted(path.name for path in folder.glob("*.bin")) + sorted(path.name for path in folder.glob("*.pt"))
    found = f"; found {others}, which are not loaded (convert .pt checkpoints with convert_icefall)" if others else ""
    raise ModelLoadError(
        f"{folder / 'model.safetensors'} is missing: the folder has no weights{found}; copy the model's "
        "model.safetensors into it, or save the model with save_pretrained"
    )


def _check_weight_shapes(weights: Path, config_values: dict[str, Any]) -> None:
    """A damaged file, or tensors whose shapes the config does not give (an edited vocab_size, num_mel_bins...)."""
    import torch
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise ModelLoadError(
            f"{weights} is damaged ({_first_line(error)}): truncated or not a safetensors file; copy or download "
            "it again"
        ) from None

    from configuration_mt2kd import MT2KDConfig
    from modeling_mt2kd import MT2KDForMultiTask

    try:
        config = MT2KDConfig.from_dict(config_values)
        with torch.device("meta"):
            expected = {name: tuple(tensor.shape) for name, tensor in MT2KDForMultiTask(config).state_dict().items()}
    except (ValueError, TypeError, KeyError) as error:
        raise ModelLoadError(f"{weights.parent / 'config.json'} is not a valid MT2KD config: {_first_line(error)}")
    for name, shape in shapes.items():
        if name in expected and expected[name] != shape:
            raise ModelLoadError(
                f"{weights} holds {name} of shape {shape}, but {weights.parent / 'config.json'} makes it "
                f"{expected[name]}: the config's sizes (e.g. vocab_size, num_mel_bins, encoder_dim) do not match "
                "the weights; restore the config.json saved with these weights"
            )


def _is_plausible_repo_id(source: str) -> bool:
    if not _REPO_ID.match(source) or "--" in source or ".." in source or len(source) > 96:
        return False
    # "runs/model" where ./runs is a folder here: a local path with a typo, not a Hub namespace.
    return not ("/" in source and Path(source.split("/")[0]).is_dir())


def _check_hub_repo(repo_id: str) -> None:
    """One request to the Hub (transformers would retry for half a minute when it cannot be reached)."""
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        model_info(repo_id, timeout=10)
    except GatedRepoError:
        return  # exists; transformers says how to get access
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"model {repo_id!r} is neither a folder here nor a model on the Hub; {_FOLDER_HINT}"
        ) from None
    except HfHubHTTPError:
        return  # the Hub answered; transformers reports what it said
    except Exception as error:  # connection, DNS, TLS, timeout: whatever the HTTP client raises
        raise ModelLoadError(
            f"model {repo_id!r} is not a folder here, and the Hub could not be reached to look it up "
            f"({type(error).__name__}: {_first_line(error)}); pass an existing folder, or check the connection"
        ) from None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
