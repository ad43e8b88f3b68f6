"""Corpus specification and loading through Hugging Face `datasets`, with our own audio decoding.

`load_corpus` returns a dataset whose columns are our role names, whatever the source called them:

    audio       {"bytes": bytes | None, "path": str | None}  (`Audio(decode=False)`; decoded later
                by the collator through soundfile, never by `datasets`)
    id          str, unique within the corpus (reported by `DataHealth`)
    duration_s  float seconds (from the manifest, else measured with `soundfile.info`)
    text        transcript (ASR corpora)
    labels      tag names: a list, or one string joined by ";" (tagging corpora)
    speaker     speaker name (speaker corpora)
    ...         the label role of any other task of the task table (training_mt2kd.tasks)
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from datasets import Audio, Dataset, Features, IterableDataset, Value, load_dataset

from training_mt2kd.data.health import DataHealth, SkipReason
from training_mt2kd.tasks import corpus_task_names, get_task, label_roles, parse_task_list, task_names

BASE_ROLES = ("audio", "id", "duration", "split")
"""Column roles of every corpus; the label roles come from the task table (`roles()`)."""


def roles() -> tuple[str, ...]:
    """Every column role a corpus may map: the base roles and each task's label role."""
    return (*BASE_ROLES[:1], *label_roles(), *BASE_ROLES[1:])

MANIFEST_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
FOLDER_MANIFESTS = ("metadata.csv", "metadata.jsonl")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")


class ManifestPathError(ValueError):
    """A manifest entry points outside the corpus root (absolute path, `..` or a URL)."""


@dataclass
class CorpusSpec:
    """Where a corpus lives, which of its columns play which role, and what it trains.

    `source` is a Hub dataset id, a local manifest (.csv/.tsv/.json/.jsonl/.parquet) or a local
    folder in audiofolder layout (audio files, optionally a `metadata.csv`/`metadata.jsonl` with a
    `file_name` column). `columns` maps our roles (audio, id, duration, split and each task's
    label role: text, labels, speaker, ...) to the source's column names; roles left out are absent. When a `split` role is mapped,
    only the rows whose split column equals `split` are kept (for one-file manifests that hold
    several splits); for Hub ids `split` is the dataset split. Relative audio paths resolve
    against `root` (default: the manifest's folder); an entry that leaves the root is rejected
    unless `allow_absolute_paths`. Examples outside [min_duration_s, max_duration_s] are dropped
    and counted (None disables a bound).
    """

    name: str = field(metadata={"help": "Name used in logs, run summaries and data-health counts."})
    source: str = field(metadata={"help": "Hub dataset id, or a local csv/tsv/json/jsonl/parquet manifest or audiofolder."})
    config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    split: str = field(default="train", metadata={"help": "Dataset split (or the value of a mapped split column)."})
    streaming: bool = field(default=False, metadata={"help": "Stream the corpus (IterableDataset) instead of downloading it."})
    columns: dict[str, str] = field(
        default_factory=lambda: {"audio": "audio"},
        metadata={"help": "Our roles → source columns: audio, id, duration, split and each task's label role."},
    )
    task: str | Sequence[str] = field(
        default="asr", metadata={"help": "A task of the task table or distill, or a '+'-joined combination."}
    )
    weight: float = field(default=1.0, metadata={"help": "Share of batches drawn from this corpus when several are mixed."})
    root: str | None = field(default=None, metadata={"help": "Folder that relative audio paths resolve against."})
    allow_absolute_paths: bool = field(default=False, metadata={"help": "Let a manifest point outside its root."})
    min_duration_s: float | None = field(default=1.0, metadata={"help": "Shorter examples are dropped (None: no bound)."})
    max_duration_s: float | None = field(default=30.0, metadata={"help": "Longer examples are dropped (None: no bound)."})
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})

    def __post_init__(self) -> None:
        self.columns = dict(self.columns)
        self.columns.setdefault("audio", "audio")
        unknown_roles = sorted(set(self.columns) - set(roles()))
        if unknown_roles:
            raise ValueError(f"corpus {self.name!r}: unknown column roles {unknown_roles}; roles are {list(roles())}")
        unknown_tasks = [task for task in self.tasks if task not in corpus_task_names()]
        if unknown_tasks or not self.tasks:
            raise ValueError(
                f"corpus {self.name!r}: task {self.task!r} is not one of {list(corpus_task_names())} or a combination "
                "such as 'asr+speaker'"
            )
        for task in self.tasks:
            role = get_task(task).label_role if task in task_names() else None
            if role is not None and role not in self.columns:
                raise ValueError(
                    f"corpus {self.name!r} trains {task!r} but maps no {role!r} column; add "
                    f"columns={{'{role}': '<column name>'}} or drop the task"
                )
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise ValueError(f"corpus {self.name!r}: weight must be a positive number; got {self.weight}")
        if self.min_duration_s is not None and self.max_duration_s is not None:
            if self.min_duration_s > self.max_duration_s:
                raise ValueError(
                    f"corpus {self.name!r}: min_duration_s {self.min_duration_s} exceeds max_duration_s "
                    f"{self.max_duration_s}"
                )

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task ids as a tuple; `task` may be "asr+speaker" or a list."""
        return parse_task_list(self.task)


def corpus_spec_from_dict(values: Mapping[str, Any], where: str = "corpus entry", **defaults: Any) -> CorpusSpec:
    """The one parser of corpus entries (a run configuration's data.train / data.valid / augment.noise,
    the demo's manifests): keys are `CorpusSpec` fields; `defaults` fill the keys an entry leaves out."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping of corpus options such as {{name, source, task}}; got {values!r}")
    known = [spec_field.name for spec_field in fields(CorpusSpec)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} in {where}; known: {sorted(known)}")
    merged = {**defaults, **values}
    if not merged.get("source"):
        raise ValueError(f"{where}: 'source' (a Hub dataset id, manifest or audio folder) is required")
    return CorpusSpec(**{"name": "corpus", **merged})


def load_corpus(spec: CorpusSpec, health: DataHealth | None = None) -> Dataset | IterableDataset:
    """Load `spec` with role-named columns, audio left undecoded, and the duration filter applied.

    Non-streaming corpora are filtered now (each dropped example is recorded in `health`);
    streaming ones lazily as they are iterated. Path checks raise `ManifestPathError`.
    """
    dataset, root, kind = _load_source(spec)
    column_names = dataset.column_names
    if column_names is not None:
        missing = {role: column for role, column in spec.columns.items() if column not in column_names}
        if missing:
            raise ValueError(
                f"corpus {spec.name!r}: columns {missing} are not in {spec.source}; it has {column_names}. "
                "Fix CorpusSpec.columns (role -> column name)"
            )
    audio_column = spec.columns["audio"]
    if dataset.features is not None and isinstance(dataset.features.get(audio_column), Audio):
        dataset = dataset.cast_column(audio_column, Audio(decode=False))
    if "split" in spec.columns:
        dataset = dataset.filter(_in_split, input_columns=spec.columns["split"], fn_kwargs={"split": spec.split})

    prepare_kwargs = {
        "columns": spec.columns,
        "root": None if root is None else os.path.normpath(os.path.abspath(root)),
        "kind": kind,
        "allow_absolute_paths": spec.allow_absolute_paths,
        "corpus": spec.name,
    }
    if isinstance(dataset, IterableDataset):
        dataset = dataset.map(_prepare_example, with_indices=True, fn_kwargs=prepare_kwargs)
        # a streamed csv/json has no column list up front, so the source's columns go afterwards
        dataset = dataset.select_columns(["audio", "id", "duration_s", *_target_roles(spec)])
        return dataset.filter(_keep_duration, fn_kwargs={"spec": spec, "health": health})
    dataset = dataset.map(
        _prepare_example,
        with_indices=True,
        fn_kwargs=prepare_kwargs,
        remove_columns=column_names,
        features=_role_features(spec, dataset.features),
        desc=f"Preparing {spec.name}",
    )
    return _filter_by_duration(dataset, spec, health)


def _load_source(spec: CorpusSpec) -> tuple[Dataset | IterableDataset, str | None, str]:
    """`(dataset, root for audio paths or None, kind)`; kind is "manifest", "folder" or "hub"."""
    path = Path(spec.source).expanduser()
    suffix = path.suffix.lower()
    common = {"split": "train", "streaming": spec.streaming, "cache_dir": spec.cache_dir}
    if path.is_dir():
        root = spec.root or str(path)
        for manifest in FOLDER_MANIFESTS:
            if (path / manifest).is_file():
                builder = MANIFEST_BUILDERS[Path(manifest).suffix]
                dataset = load_dataset(builder, data_files=str(path / manifest), **common)
                if "file_name" not in (dataset.column_names or ["file_name"]):
                    raise ValueError(
                        f"corpus {spec.name!r}: {path / manifest} needs a 'file_name' column naming each "
                        f"audio file (audiofolder layout); it has {dataset.column_names}"
                    )
                return dataset.rename_column("file_name", "audio"), root, "folder"
        # datasets' own audiofolder builder needs torchcodec to write its Audio column, so the
        # folder is listed here instead; its audio column is called "audio" as in audiofolder.
        files = sorted(
            str(file.relative_to(path)) for file in path.rglob("*") if file.suffix.lower() in AUDIO_EXTENSIONS
        )
        if not files:
            raise FileNotFoundError(
                f"corpus {spec.name!r}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {path}"
            )
        listing = Dataset.from_dict({"audio": files})
        return (listing.to_iterable_dataset() if spec.streaming else listing), root, "folder"
    if suffix in MANIFEST_BUILDERS:
        if not path.is_file():
            raise FileNotFoundError(f"corpus {spec.name!r}: manifest {path} does not exist")
        options = {"delimiter": "\t"} if suffix == ".tsv" else {}
        dataset = load_dataset(MANIFEST_BUILDERS[suffix], data_files=str(path), **common, **options)
        return dataset, spec.root or str(path.parent), "manifest"
    dataset = load_dataset(
        spec.source, spec.config, split=spec.split, streaming=spec.streaming, cache_dir=spec.cache_dir
    )
    return dataset, spec.root, "hub"


def _role_features(spec: CorpusSpec, source_features: Features) -> Features:
    """Arrow types of the role columns: the source's own, plus fixed audio/id/duration types."""
    features = {"audio": Audio(decode=False), "id": Value("string"), "duration_s": Value("float64")}
    for role in _target_roles(spec):
        features[role] = source_features[spec.columns[role]]
    return Features(features)


def _target_roles(spec: CorpusSpec) -> list[str]:
    return [role for role in label_roles() if role in spec.columns]


def _in_split(value: Any, split: str) -> bool:
    return value is not None and str(value) == split


def _prepare_example(
    example: dict[str, Any],
    index: int,
    columns: Mapping[str, str],
    root: str | None,
    kind: str,
    allow_absolute_paths: bool,
    corpus: str,
) -> dict[str, Any]:
    """One source row → role columns, with the audio path resolved and checked against `root`."""
    missing = sorted({column for column in columns.values() if column not in example})
    if missing:
        raise ValueError(
            f"corpus {corpus!r}: columns {missing} are not in the source; it has {sorted(example)}. "
            "Fix CorpusSpec.columns (role -> column name)"
        )
    audio = example[columns["audio"]]
    if isinstance(audio, Mapping):
        audio_bytes, written_path = audio.get("bytes"), audio.get("path")
    else:
        audio_bytes, written_path = None, audio
    if isinstance(written_path, float) and math.isnan(written_path):
        written_path = None  # an empty csv cell: no duration can be measured, so the filter counts it
    if written_path is not None and not isinstance(written_path, str):
        raise ValueError(
            f"corpus {corpus!r}, row {index}: the audio column holds a {type(written_path).__name__}, not a path; "
            "map the 'audio' role to the column of file paths"
        )
    path = written_path
    if audio_bytes is None and written_path and kind != "hub":
        path = resolve_audio_path(written_path, root, allow_absolute_paths, where=f"corpus {corpus!r}, row {index}")

    prepared = {"audio": {"bytes": audio_bytes, "path": path}}
    for role in label_roles():
        if role in columns:
            value = example[columns[role]]
            # pandas reads an empty csv cell of a numeric column as NaN: treat it as missing.
            prepared[role] = None if isinstance(value, float) and math.isnan(value) else value
    if "id" in columns:
        prepared["id"] = str(example[columns["id"]])
    else:
        prepared["id"] = f"{corpus}/{written_path}" if written_path else f"{corpus}/{index}"
    duration_s = example.get(columns["duration"]) if "duration" in columns else None
    if duration_s is None or not math.isfinite(float(duration_s)):
        duration_s = probe_duration_s(audio_bytes, path)
    prepared["duration_s"] = float(duration_s)
    return prepared


def resolve_audio_path(written_path: str, root: str | None, allow_absolute_paths: bool, where: str = "") -> str:
    """Join a manifest's audio path to `root`; refuse absolute paths, `..` escapes and URLs.

    With `allow_absolute_paths` any local path is accepted (relative ones still join `root`).
    """
    prefix = f"{where}: " if where else ""
    if "://" in written_path:
        if allow_absolute_paths:
            return written_path
        raise ManifestPathError(
            f"{prefix}audio path {written_path!r} is a URL; only paths inside the corpus root are read "
            "unless CorpusSpec.allow_absolute_paths=True"
        )
    if os.path.isabs(written_path):
        if allow_absolute_paths or (root is not None and _inside(os.path.normpath(written_path), root)):
            return os.path.normpath(written_path)
        raise ManifestPathError(
            f"{prefix}audio path {written_path!r} is absolute; write it relative to the corpus root "
            f"{root!r} or set CorpusSpec.allow_absolute_paths=True"
        )
    if root is None:
        raise ManifestPathError(f"{prefix}relative audio path {written_path!r} needs a root; set CorpusSpec.root")
    resolved = os.path.normpath(os.path.join(root, written_path))
    if not allow_absolute_paths and not _inside(resolved, root):
        raise ManifestPathError(
            f"{prefix}audio path {written_path!r} leaves the corpus root {root!r}; move the file under the "
            "root, set CorpusSpec.root to a folder that contains it, or set allow_absolute_paths=True"
        )
    return resolved


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def probe_duration_s(audio_bytes: bytes | None, path: str | None) -> float:
    """Duration in seconds from the file header (NaN when the file cannot be read)."""
    try:
        info = soundfile.info(io.BytesIO(audio_bytes) if audio_bytes is not None else path)
    except Exception:  # noqa: BLE001 - soundfile raises several types; any of them means unreadable
        return math.nan
    if info.samplerate <= 0:
        return math.nan
    return info.frames / info.samplerate


def _duration_verdict(duration_s: float, spec: CorpusSpec) -> SkipReason | None:
    """Why an example of this duration is dropped, or None to keep it."""
    if not math.isfinite(duration_s) or duration_s < 0:
        return SkipReason.UNREADABLE
    if spec.min_duration_s is not None and duration_s < spec.min_duration_s:
        return SkipReason.TOO_SHORT
    if spec.max_duration_s is not None and duration_s > spec.max_duration_s:
        return SkipReason.TOO_LONG
    return None


def _keep_duration(example: dict[str, Any], spec: CorpusSpec, health: DataHealth | None) -> bool:
    verdict = _duration_verdict(example["duration_s"], spec)
    if verdict is not None and health is not None:
        health.record(verdict, example["id"])
    return verdict is None


def _filter_by_duration(dataset: Dataset, spec: CorpusSpec, health: DataHealth | None) -> Dataset:
    durations = np.asarray(dataset.with_format("numpy")["duration_s"], dtype=np.float64)
    verdicts = [_duration_verdict(float(duration), spec) for duration in durations]
    dropped = [index for index, verdict in enumerate(verdicts) if verdict is not None]
    if not dropped:
        return dataset
    if health is not None:
        ids = dataset.select(dropped)["id"]
        for index, example_id in zip(dropped, ids, strict=True):
            health.record(verdicts[index], example_id)
    return dataset.select([index for index, verdict in enumerate(verdicts) if verdict is None])
