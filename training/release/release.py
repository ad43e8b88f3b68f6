"""Hub release of a trained MT2KD folder: check it, assemble the release folder, upload it.

A release folder holds the weights, config.json with `auto_map` and `custom_pipelines`, the
feature-extractor / tokenizer / processor files with their `auto_map`, the flat remote-code bundle
(so `trust_remote_code=True` works without this package) and a README.md rendered from the
`model_card.md` template, with metrics taken from `training/evaluate.py`'s JSON only. The input
folder is only read. Assembly is deterministic, so re-running an interrupted upload rebuilds the
same files and `upload_folder` sends only what the Hub does not have yet.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
import yaml
from huggingface_hub import EvalResult, HfApi, ModelCardData, get_token
from huggingface_hub.errors import HfHubHTTPError

import modeling_mt2kd
from configuration_mt2kd import MT2KDConfig
from training_mt2kd.release.remote_code import (
    add_auto_map,
    add_custom_pipelines,
    add_front_end_auto_map,
    bundled_pipelines,
    write_remote_code,
)
from processing_mt2kd import MT2KDProcessor
from processing_mt2kd.pipelines.speaker_threshold import read_calibrated_threshold
from training_mt2kd.release.provenance import read_training_metadata, stages_of
from training_mt2kd.tasks import get_task, task_names

logger = logging.getLogger(__name__)

# The card template: package data of training_mt2kd, a link to the top-level model_card.md.
MODEL_CARD_TEMPLATE = "model_card.md"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
# Front-end files copied as they are when present (the processor writes them).
FRONT_END_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "bpe.model",
)
# How the Hub shows each task's results: the model-index task type and display name. Speaker verification has its own
# task type: the Hub groups model-index results by type, and under "audio-classification" EER and minDCF were shown as
# "Audio tagging" results. A task added to the task table without an entry here is shown as audio classification
# under its own name. Which tasks exist, and their metrics and decodings, come from training_mt2kd.tasks.
HUB_TASKS = {
    "asr": {"task_type": "automatic-speech-recognition", "task_name": "Speech recognition"},
    "tagging": {"task_type": "audio-classification", "task_name": "Audio tagging"},
    "speaker": {"task_type": "speaker-verification", "task_name": "Speaker verification"},
}
# Results that are settings rather than scores, per task (the speaker threshold the evaluation calibrates,
# training_mt2kd.evaluation.threshold): accepted in the evaluation JSON, left out of model-index and the results table.
SETTING_METRICS = {"speaker": ("threshold",)}
METRIC_NAMES = {"wer": "WER", "map": "mAP", "eer": "EER", "min_dcf": "minDCF"}
PERCENT_METRICS = ("wer", "map", "eer")
# HTTP statuses worth another try: timeouts, rate limits and server-side failures.
TRANSIENT_STATUS_CODES = (408, 429, 500, 502, 503, 504)


class ReleaseError(Exception):
    """A folder, evaluation file, token or repository that the release cannot use as it is."""


@dataclass
class CheckedFolder:
    """What `check_model_folder` learnt about a model folder."""

    folder: Path
    config: MT2KDConfig
    architecture: str
    num_parameters: int
    processor: MT2KDProcessor


def check_model_folder(folder: str | Path) -> CheckedFolder:
    """Check that `folder` is a complete MT2KD model: valid config, weights that load, processor files.

    Raises:
        ReleaseError: naming what is missing or wrong, and how to fix it.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ReleaseError(
            f"{folder} has no config.json; pass a folder written by save_pretrained (or convert_icefall)"
        )
    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    if model_type != MT2KDConfig.model_type:
        raise ReleaseError(f"{folder}/config.json has model_type={model_type!r}; expected {MT2KDConfig.model_type!r}")
    try:
        config = MT2KDConfig.from_pretrained(folder)
    except ValueError as error:
        raise ReleaseError(f"{folder}/config.json is not a valid MT2KDConfig: {error}") from error
    if not ((folder / WEIGHTS_FILE).is_file() or (folder / WEIGHTS_INDEX_FILE).is_file()):
        raise ReleaseError(
            f"{folder} has no {WEIGHTS_FILE}; load the model and save it with save_pretrained "
            "(safetensors is the default)"
        )
    architecture = (config.architectures or [None])[0]
    model_class = getattr(modeling_mt2kd, architecture or "", None)
    if model_class is None:
        raise ReleaseError(
            f"{folder}/config.json names architectures={config.architectures}; expected one of the MT2KD model classes "
            f"({', '.join(name for name in modeling_mt2kd.__all__ if name.startswith('MT2KDFor'))})"
        )
    model, loading_info = model_class.from_pretrained(folder, output_loading_info=True)
    problems = {kind: keys for kind, keys in loading_info.items() if kind != "error_msgs" and keys}
    if problems:
        details = "; ".join(f"{kind}: {sorted(map(str, keys))[:5]}" for kind, keys in problems.items())
        raise ReleaseError(
            f"the weights in {folder} do not match {architecture} ({details}); re-save the trained model"
        )
    try:
        processor = MT2KDProcessor.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ReleaseError(
            f"{folder} has no loadable processor ({error}); save one next to the weights with "
            "MT2KDProcessor(MT2KDFeatureExtractor(), MT2KDTokenizer('bpe.model')).save_pretrained(folder)"
        ) from error
    if len(processor.tokenizer) != config.vocab_size:
        raise ReleaseError(
            f"the tokenizer in {folder} has {len(processor.tokenizer)} pieces but the model's ASR heads have "
            f"vocab_size={config.vocab_size}; save the bpe.model the model was trained with"
        )
    return CheckedFolder(folder, config, architecture, model.num_parameters(), processor)


def load_eval_results(path: str | Path) -> dict:
    """Read and validate `training/evaluate.py`'s JSON (`{"model": ..., "results": [...]}`, values in percent
    except `min_dcf`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReleaseError(f"cannot read evaluation results {path}: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ReleaseError(f"{path} has no 'results' list; pass the JSON written by training/evaluate.py")
    for index, result in enumerate(data["results"]):
        where = f"{path}: results[{index}]"
        task = result.get("task")
        if task not in task_names():
            raise ReleaseError(f"{where} has task={task!r}; expected one of {sorted(task_names())}")
        if result.get("metric") not in reported_metrics(task):
            raise ReleaseError(
                f"{where} has metric={result.get('metric')!r}; a {task} result reports {reported_metrics(task)}"
            )
        value = result.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ReleaseError(f"{where} has value={value!r}; expected a finite number")
        for key in ("dataset", "split"):
            if not isinstance(result.get(key), str) or not result[key]:
                raise ReleaseError(f"{where} has {key}={result.get(key)!r}; expected a non-empty string")
        decodings = task_decodings(task)
        if decodings and result.get("decoding") not in decodings:
            raise ReleaseError(f"{where} has decoding={result.get('decoding')!r}; expected one of {decodings}")
    return data


def reported_metrics(task: str) -> tuple[str, ...]:
    """The metrics an evaluation result of `task` may report: the task table's, then its settings."""
    return (*get_task(task).metrics, *SETTING_METRICS.get(task, ()))


def task_decodings(task: str) -> tuple[str, ...]:
    """Every decoding of `task` in the task table (a result of a task with decodings names one)."""
    decodings = get_task(task).decodings or {}
    return tuple(dict.fromkeys(method for methods in decodings.values() for method in methods))


def model_index(eval_results: dict, model_name: str) -> list[EvalResult]:
    """One `model-index` entry per evaluation result, values exactly as in the JSON."""
    entries = []
    for result in _scores(eval_results):
        task = HUB_TASKS.get(result["task"], {"task_type": "audio-classification", "task_name": result["task"]})
        metric_name = _metric_name(result)
        entries.append(
            EvalResult(
                task_type=task["task_type"],
                task_name=task["task_name"],
                dataset_type=result["dataset"],
                dataset_name=result["dataset"],
                dataset_config=result.get("dataset_config"),
                dataset_split=result["split"],
                metric_type=result["metric"],
                metric_name=metric_name,
                metric_value=result["value"],
                metric_args={"p_target": result["p_target"]} if "p_target" in result else None,
            )
        )
    return entries


def _scores(eval_results: dict) -> list[dict]:
    return [
        result for result in eval_results["results"] if result["metric"] not in SETTING_METRICS.get(result["task"], ())
    ]


def _metric_name(result: dict) -> str:
    """Display name of a result's metric, with the decoding (ASR) or operating point (minDCF)."""
    name = METRIC_NAMES.get(result["metric"], result["metric"])
    if result.get("decoding"):
        return f"{name} ({result['decoding']})"
    if "p_target" in result:
        return f"{name} (p_target={result['p_target']})"
    return name


def read_card_template() -> str:
    """The `model_card.md` template (package data of training_mt2kd)."""
    template = resources.files("training_mt2kd.release").joinpath(MODEL_CARD_TEMPLATE)
    if not template.is_file():
        raise ReleaseError(
            f"the model card template {MODEL_CARD_TEMPLATE} is not installed with training_mt2kd; reinstall mt2kd"
        )
    return template.read_text(encoding="utf-8")


def _split_front_matter(text: str) -> tuple[dict, str]:
    """YAML metadata and markdown body of a card template."""
    if not text.startswith("---\n"):
        raise ReleaseError("the model card template must start with YAML metadata between '---' lines")
    metadata, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(metadata) or {}, body


def _result_rows(eval_results: dict) -> list[dict]:
    """The results table of the card: one row per result, values formatted for reading."""
    rows = []
    for result in _scores(eval_results):
        metric = result["metric"]
        shown = f"{result['value']:.2f} %" if metric in PERCENT_METRICS else f"{result['value']:.4f}"
        rows.append(
            {
                "task": result["task"],
                "dataset": result["dataset"],
                "dataset_config": result.get("dataset_config") or "",
                "split": result["split"],
                "decoding": result.get("decoding") or "",
                "metric_name": _metric_name(result),
                "shown": shown,
                "num_examples": result.get("num_examples") or "",
            }
        )
    return rows


def render_model_card(checked: CheckedFolder, repo_id: str, eval_results: dict | None = None) -> str:
    """README.md for a release: the template's metadata plus `model-index`/`datasets` from `eval_results`,
    and its body rendered with Jinja (`repo_id`, `model_name`, `config`, `num_parameters`, `pipelines`,
    `results`: table rows or None)."""
    metadata, body = _split_front_matter(read_card_template())
    model_name = repo_id.rsplit("/", 1)[-1]
    if eval_results is not None and _scores(eval_results):
        datasets = list(
            dict.fromkeys([*(metadata.pop("datasets", None) or []), *(r["dataset"] for r in _scores(eval_results))])
        )
        card_data = ModelCardData(
            **metadata, datasets=datasets, model_name=model_name, eval_results=model_index(eval_results, model_name)
        )
        rows = _result_rows(eval_results)
    else:
        card_data, rows = ModelCardData(**metadata), None
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = environment.from_string(body).render(
        repo_id=repo_id,
        model_name=model_name,
        config=checked.config,
        num_parameters=checked.num_parameters,
        pipelines=sorted(bundled_pipelines()),
        results=rows,
        stages=stages_of(read_training_metadata(checked.folder)),
        speaker_threshold=_speaker_threshold(checked.config),
    )
    return f"---\n{card_data.to_yaml()}\n---\n{text}"


def _speaker_threshold(config: MT2KDConfig) -> dict | None:
    calibrated = read_calibrated_threshold(config)
    return None if calibrated is None else calibrated.as_dict()


def _is_release_file(path: Path) -> bool:
    """Whether `path` is a file that `assemble_release` writes."""
    names = {"README.md", "config.json", WEIGHTS_FILE, WEIGHTS_INDEX_FILE, *FRONT_END_FILES}
    shard = re.fullmatch(r"model-\d+-of-\d+\.safetensors", path.name)
    return path.is_file() and (path.name in names or path.suffix == ".py" or shard is not None)


def _prepare_output_dir(folder: Path, output_dir: Path) -> None:
    """Create `output_dir`, or empty it when it holds an earlier (maybe partial) release; never touch `folder`."""
    folder, output_dir = folder.resolve(), output_dir.resolve()
    if output_dir == folder or folder in output_dir.parents or output_dir in folder.parents:
        raise ReleaseError(
            f"the release folder {output_dir} overlaps the model folder {folder}; choose a separate folder"
        )
    if output_dir.exists():
        strangers = [entry.name for entry in sorted(output_dir.iterdir()) if not _is_release_file(entry)]
        if strangers:
            raise ReleaseError(
                f"{output_dir} holds {strangers[:3]}, which a release does not write; choose a new or empty folder"
            )
        for entry in output_dir.iterdir():
            entry.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)


def assemble_release(
    folder: str | Path,
    output_dir: str | Path,
    repo_id: str,
    eval_results: dict | None = None,
    checked: CheckedFolder | None = None,
) -> Path:
    """Write the release of model `folder` into `output_dir` (created, or emptied if it holds an earlier release).

    Args:
        folder: a checked MT2KD model folder (weights, config, processor); only read.
        output_dir: the release folder.
        repo_id: the Hub repository the card names (`user/name`).
        eval_results: `load_eval_results`' dict, or None for a card without metrics.
        checked: `check_model_folder(folder)`'s result when already computed.

    Returns:
        `output_dir` as a Path.
    """
    folder, output_dir = Path(folder), Path(output_dir)
    checked = checked or check_model_folder(folder)
    card = render_model_card(checked, repo_id, eval_results)
    _prepare_output_dir(folder, output_dir)
    weights = [WEIGHTS_FILE] if (folder / WEIGHTS_FILE).is_file() else _shard_files(folder)
    for name in ("config.json", *weights, *FRONT_END_FILES):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, output_dir / name)
    if not (output_dir / "preprocessor_config.json").is_file():
        checked.processor.feature_extractor.save_pretrained(output_dir)
    write_remote_code(output_dir)
    add_auto_map(output_dir)
    add_custom_pipelines(output_dir)
    add_front_end_auto_map(output_dir)
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    return output_dir


def _shard_files(folder: Path) -> list[str]:
    """The index and shard files of sharded safetensors weights."""
    index = json.loads((folder / WEIGHTS_INDEX_FILE).read_text(encoding="utf-8"))
    return [WEIGHTS_INDEX_FILE, *sorted(set(index["weight_map"].values()))]


def resolve_token(token: str | None = None) -> str:
    """`token`, else HF_TOKEN, else the token stored by `hf auth login`."""
    token = token or get_token()
    if not token:
        raise ReleaseError(
            "no Hugging Face token: set HF_TOKEN to a token with write access or run `hf auth login` "
            "(tokens: https://huggingface.co/settings/tokens)"
        )
    return token


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of the HTTP client huggingface_hub uses (httpx2, httpx or requests, by version)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name, names in (
        ("httpx2", ("TimeoutException", "NetworkError", "RemoteProtocolError")),
        ("httpx", ("TimeoutException", "NetworkError", "RemoteProtocolError")),
        ("requests", ("ConnectionError", "Timeout")),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        errors += [getattr(module, name) for name in names if hasattr(module, name)]
    return tuple(errors)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, HfHubHTTPError):
        return error.response is not None and error.response.status_code in TRANSIENT_STATUS_CODES
    return isinstance(error, _transport_errors())


def upload_release(
    release_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    attempts: int = 5,
    first_retry_wait_s: float = 5.0,
) -> str:
    """Create `repo_id` if needed (and branch `revision`) and upload `release_dir`; returns the commit URL.

    Connection errors and 408/429/5xx answers are retried `attempts` times in all, waiting
    `first_retry_wait_s`, then twice as long each time; after the last, a ReleaseError says that nothing local
    changed and that the same command can be re-run. Each try re-sends only what the Hub lacks
    (`upload_folder` skips files whose content is already there), so re-running after an interruption
    completes the upload.

    Args:
        endpoint: the Hub URL; default: huggingface_hub's (`HF_ENDPOINT` or https://huggingface.co).
    """
    api = HfApi(endpoint=endpoint, token=resolve_token(token))
    attempt = 1
    while True:
        try:
            return _upload_once(api, release_dir, repo_id, private, revision, commit_message)
        except Exception as error:
            if not _is_transient(error):
                raise
            if attempt == attempts:
                raise ReleaseError(
                    f"the upload to {repo_id} failed after {attempts} tries ({type(error).__name__}: "
                    f"{str(error).strip() or 'no answer'}); nothing local was changed (the model folder is only read, "
                    f"the release folder {release_dir} is complete). Re-run the same command when the Hub can be "
                    "reached: files already uploaded are not sent again"
                ) from error
            wait_s = first_retry_wait_s * 2 ** (attempt - 1)
            attempt += 1
            logger.warning(
                "upload to %s failed (%s); try %d of %d in %.1f s", repo_id, error, attempt, attempts, wait_s
            )
            time.sleep(wait_s)


def _upload_once(
    api: HfApi, release_dir: str | Path, repo_id: str, private: bool, revision: str | None, commit_message: str | None
) -> str:
    api.create_repo(repo_id, private=private, exist_ok=True)
    if private and not api.repo_info(repo_id).private:
        raise ReleaseError(
            f"{repo_id} already exists and is public; --private does not change an existing repository: make it "
            "private in its settings on the Hub, or release without --private"
        )
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=release_dir,
        revision=revision,
        commit_message=commit_message or "Release: weights, processor, remote code and model card (hub_upload.py)",
    )
    return commit.commit_url


def push_model_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    eval_results: dict | None = None,
    output_dir: str | Path | None = None,
    token: str | None = None,
) -> str:
    """Check `folder`, assemble its release (in `output_dir`, else a temporary folder) and upload it.

    The path used by `hub_upload.py` and by the training loop's `--push_to_hub`. Returns the commit URL.
    """
    token = resolve_token(token)
    checked = check_model_folder(folder)
    with tempfile.TemporaryDirectory(prefix="mt2kd-release-") as scratch:
        release_dir = assemble_release(
            folder, output_dir or Path(scratch) / Path(folder).name, repo_id, eval_results, checked=checked
        )
        return upload_release(
            release_dir, repo_id, private=private, revision=revision, commit_message=commit_message, token=token
        )
