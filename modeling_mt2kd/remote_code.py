"""Flat remote-code bundle: `trust_remote_code=True` loads a saved folder without this package.

transformers copies a model folder's `*.py` files into its module cache and follows only
single-dot relative imports (`from .module import name`) between files of one flat folder. This
module rewrites our packages (sub-packages included) into such a flat set of files and points the
config's `auto_map` at them.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from types import ModuleType

# Packages bundled by default, and the Auto classes each model class serves.
BUNDLED_PACKAGES = ("configuration_mt2kd", "modeling_mt2kd")
AUTO_MAP = {
    "AutoConfig": "configuration_mt2kd.MT2KDConfig",
    "AutoModel": "modeling_mt2kd.MT2KDModel",
    "AutoModelForCTC": "modeling_mt2kd.MT2KDForCTC",
    "AutoModelForAudioClassification": "modeling_mt2kd.MT2KDForAudioClassification",
    "AutoModelForAudioXVector": "modeling_mt2kd.MT2KDForXVector",
}
# Modules of the bundled packages that a loaded model never needs.
EXCLUDED_MODULES = {"modeling_mt2kd.convert_icefall", "modeling_mt2kd.remote_code", "modeling_mt2kd.registration"}


def _package_modules(package_name: str) -> dict[str, Path]:
    """Every module of a package (recursively): dotted name → source file (packages → __init__)."""
    package = importlib.import_module(package_name)
    root = Path(package.__file__).parent
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        dotted = ".".join((package_name, *parts))
        modules[dotted.removesuffix(".__init__")] = path
    return modules


def _flat_name(dotted: str) -> str:
    """The bundle file (without .py) of a module: its last component."""
    return dotted.rsplit(".", 1)[-1]


def _resolve(module_name: str, level: int, current: str) -> str:
    """Absolute name of an import made in module `current` (never a package __init__)."""
    if level == 0:
        return module_name
    base = current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module_name] if module_name else []))


def _defining_module(module: ModuleType, name: str) -> str:
    """The module that defines `name` when it is imported from a package's __init__."""
    value = getattr(module, name)
    return getattr(value, "__module__", module.__name__)


def _rewrite_imports(source: str, current: str, bundled: dict[str, Path]) -> str:
    """Replace imports of bundled modules by single-dot relative imports of their flat files."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        target = _resolve(node.module or "", node.level, current)
        if target not in bundled:
            continue
        by_file: dict[str, list[str]] = {}
        target_module = importlib.import_module(target)
        for alias in node.names:
            source_module = target
            if bundled[target].name == "__init__.py":
                source_module = _defining_module(target_module, alias.name)
            if source_module in EXCLUDED_MODULES:
                continue
            as_text = f" as {alias.asname}" if alias.asname else ""
            by_file.setdefault(_flat_name(source_module), []).append(alias.name + as_text)
        indent = lines[node.lineno - 1][: node.col_offset]
        replacement = "".join(f"{indent}from .{file} import {', '.join(names)}\n" for file, names in by_file.items())
        edits.append((node.lineno, node.end_lineno, replacement))
    for start, end, replacement in reversed(edits):
        lines[start - 1 : end] = [replacement]
    return "".join(lines)


def write_remote_code(folder: str | Path, packages: tuple[str, ...] = BUNDLED_PACKAGES) -> list[str]:
    """Write the flat bundle of `packages` into `folder`; returns the file names written.

    Package `__init__` files only re-export names, so they are not bundled: imports from a package
    are redirected to the module that defines each name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bundled: dict[str, Path] = {}
    for package in packages:
        bundled.update({name: path for name, path in _package_modules(package).items() if name not in EXCLUDED_MODULES})
    written: dict[str, str] = {}
    for dotted, path in bundled.items():
        if path.name == "__init__.py":
            continue
        file_name = _flat_name(dotted) + ".py"
        if file_name in written:
            raise ValueError(f"remote-code bundle: {dotted} and {written[file_name]} would both be {file_name}")
        source = _rewrite_imports(path.read_text(encoding="utf-8"), dotted, bundled)
        (folder / file_name).write_text(source, encoding="utf-8")
        written[file_name] = dotted
    return sorted(written)


def add_auto_map(folder: str | Path, extra: dict | None = None) -> None:
    """Point config.json's `auto_map` at the bundle (plus `extra` entries)."""
    config_path = Path(folder) / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {**AUTO_MAP, **(extra or {})}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_with_remote_code(model, folder: str | Path, **save_kwargs) -> None:
    """`model.save_pretrained(folder)` plus the remote-code bundle and `auto_map`."""
    model.save_pretrained(folder, **save_kwargs)
    write_remote_code(folder)
    add_auto_map(folder)
