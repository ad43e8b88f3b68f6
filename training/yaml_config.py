"""The one YAML reader of the run, evaluation and demo configurations.

    read_config(path)                a mapping from a YAML file; `base: OTHER.yaml` (relative to the
                                     file) starts from another file, merged key by key
    apply_override(values, "a.b=v")  `--set` assignments, the value parsed as YAML
    expand_environment(text)         `${VAR}` and `${VAR:-default}` in path values
    resolve_config_path(value, dir)  an existing local path, environment expanded, relative to `dir`
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

BASE_KEY = "base"


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, key by key for nested mappings (both left unchanged)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_mapping(path: str | os.PathLike, what: str = "config") -> dict[str, Any]:
    """The mapping in one YAML file (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{what} {path}: expected a mapping of sections; got {type(values).__name__}")
    return values


def read_config(path: str | os.PathLike, what: str = "config", seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML file, with `base: OTHER.yaml` (relative to the file) merged under it."""
    path = Path(path).resolve()
    if path in seen:
        raise ValueError(f"{what} files include each other in a loop: {' -> '.join(map(str, (*seen, path)))}")
    values = read_mapping(path, what)
    base = values.pop(BASE_KEY, None)
    if base is None:
        return values
    return merge(read_config(path.parent / base, what, (*seen, path)), values)


def apply_override(values: dict[str, Any], assignment: str, example: str = "training.max_steps=100") -> None:
    """Set `section.key[.key...]=value` (value parsed as YAML) in `values`, in place."""
    key, separator, raw_value = assignment.partition("=")
    names = key.split(".")
    if not separator or len(names) < 2 or not all(names):
        raise ValueError(f"--set expects section.option=value (e.g. {example}); got {assignment!r}")
    target = values
    for name in names[:-1]:
        target = target.setdefault(name, {})
        if not isinstance(target, dict):
            raise ValueError(f"--set {assignment!r}: {name} is not a section, so it has no option {names[-1]!r}")
    target[names[-1]] = yaml.safe_load(raw_value)


_ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_environment(value: str, where: str) -> str:
    """Replace `${VAR}` and `${VAR:-default}` (default when VAR is unset or empty) in `value`."""

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if os.environ.get(name):
            return os.environ[name]
        if default is not None:
            return default
        raise ValueError(f"{where}: environment variable {name} is not set; set it or write ${{{name}:-default}}")

    return _ENV_REFERENCE.sub(substitute, value)


def resolve_config_path(value: str, config_dir: Path, where: str) -> str:
    """An existing local path from a config value: environment expanded, relative to `config_dir`."""
    path = Path(expand_environment(str(value), where)).expanduser()
    if not path.is_absolute():
        path = config_dir / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise FileNotFoundError(
            f"{where}: {path} does not exist; relative paths resolve against {config_dir} (the config's folder), "
            "or use an absolute path or ${VAR}"
        )
    return str(path)
