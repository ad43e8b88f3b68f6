"""Flat remote-code bundle: `trust_remote_code=True` loads a saved folder without this package.

transformers copies a model folder's `*.py` files into its module cache and follows only
single-dot relative imports (`from .module import name`) between files of one flat folder. This
module writes the modules a loaded model, front end and pipeline need (the import closure of the
classes below, sub-packages included) as such a flat set of files, and points the `auto_map` of
config.json, processor_config.json, preprocessor_config.json and tokenizer_config.json (and the
`custom_pipelines` of config.json) at them. Registration modules, converters and training-time
code are never bundled: nothing a loaded model imports reaches them.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd.registration import AUTO_MODEL_CLASSES
from processing_mt2kd.registration import AUTO_FRONT_END_CLASSES

# Packages whose modules are rewritten into the bundle; imports of anything else stay as they are.
BUNDLED_PACKAGES = ("configuration_mt2kd", "modeling_mt2kd", "processing_mt2kd")
# config.json's `auto_map`: Auto class → (module, class) of the bundle, from the packages' own tables.
MODEL_CLASSES = {
    "AutoConfig": (MT2KDConfig.__module__, MT2KDConfig.__name__),
    **{auto_class: (model_class.__module__, model_class.__name__) for auto_class, model_class in AUTO_MODEL_CLASSES.items()},
}
FEATURE_EXTRACTOR_CLASS, TOKENIZER_CLASS, PROCESSOR_CLASS = (
    (AUTO_FRONT_END_CLASSES[auto_class].__module__, AUTO_FRONT_END_CLASSES[auto_class].__name__)
    for auto_class in ("AutoFeatureExtractor", "AutoTokenizer", "AutoProcessor")
)
# The pipelines of these packages (transformers' pipeline registry) become `custom_pipelines`.
PIPELINE_PACKAGES = ("processing_mt2kd",)


def _flat_name(dotted: str) -> str:
    """The bundle file (without .py) of a module: its last component (see `_file_names` for clashes)."""
    return dotted.rsplit(".", 1)[-1]


def _reference(module_and_class: tuple[str, str]) -> str:
    """`auto_map` reference of a class in the bundle: `flat_module.ClassName`."""
    module, name = module_and_class
    return f"{_flat_name(module)}.{name}"


AUTO_MAP = {auto_class: _reference(target) for auto_class, target in MODEL_CLASSES.items()}


def _is_bundled(module_name: str) -> bool:
    return module_name.split(".")[0] in BUNDLED_PACKAGES


def _is_package(module_name: str) -> bool:
    return hasattr(importlib.import_module(module_name), "__path__")


def _resolve(module_name: str, level: int, current: str) -> str:
    """Absolute name of an import made in module `current` (`package.__init__` for a package's own imports)."""
    if level == 0:
        return module_name
    base = current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module_name] if module_name else []))


def _defining_module(package_name: str, name: str) -> tuple[str, str]:
    """The module that binds `name` in a package, and the name there: the package `__init__`'s import
    of that name, followed through sub-packages."""
    init_source = Path(importlib.import_module(package_name).__file__).read_text(encoding="utf-8")
    for node in ast.parse(init_source).body:
        if not isinstance(node, ast.ImportFrom) or name not in [alias.asname or alias.name for alias in node.names]:
            continue
        if node.module is None:
            raise ValueError(
                f"remote-code bundle: {package_name}/__init__.py binds {name} with `from . import ...`, which a flat "
                "bundle cannot express; import it from the module that defines it"
            )
        source = _resolve(node.module, node.level, f"{package_name}.__init__")
        original = next(alias.name for alias in node.names if (alias.asname or alias.name) == name)
        return _defining_module(source, original) if _is_package(source) else (source, original)
    raise ValueError(
        f"remote-code bundle: {name} is not imported by {package_name}/__init__.py (defined there, or not at all); "
        "define it in a module of the package and re-export it"
    )


def _bundled_imports(tree: ast.Module, current: str) -> list[tuple[ast.ImportFrom, dict[str, list[str]]]]:
    """Every import of bundled code in a module (nested ones included): node → {defining module: names}."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(_is_bundled(alias.name) for alias in node.names):
            names = ", ".join(alias.name for alias in node.names)
            raise ValueError(
                f"remote-code bundle: `import {names}` in {current} cannot be flattened; use `from ... import`"
            )
        if not isinstance(node, ast.ImportFrom):
            continue
        target = _resolve(node.module or "", node.level, current)
        if not _is_bundled(target):
            continue
        by_module: dict[str, list[str]] = {}
        from_package = _is_package(target)
        for alias in node.names:
            source_module, source_name = _defining_module(target, alias.name) if from_package else (target, alias.name)
            bound_name = alias.asname or alias.name
            as_text = f" as {bound_name}" if bound_name != source_name else ""
            by_module.setdefault(source_module, []).append(source_name + as_text)
        found.append((node, by_module))
    return found


def _module_source(module_name: str) -> str:
    return Path(importlib.import_module(module_name).__file__).read_text(encoding="utf-8")


def _import_closure(roots: list[str]) -> dict[str, str]:
    """Source of every bundled module the `roots` import, directly or not: module name → source."""
    sources: dict[str, str] = {}
    pending = list(roots)
    while pending:
        module_name = pending.pop()
        if module_name in sources:
            continue
        sources[module_name] = _module_source(module_name)
        for _, by_module in _bundled_imports(ast.parse(sources[module_name]), module_name):
            pending.extend(by_module)
    return sources


def _auto_mapped_modules() -> list[str]:
    """Modules that define the Auto-mapped classes."""
    return [
        module for module, _ in (*MODEL_CLASSES.values(), FEATURE_EXTRACTOR_CLASS, TOKENIZER_CLASS, PROCESSOR_CLASS)
    ]


def _root_modules() -> list[str]:
    """Modules that define the Auto-mapped classes and the registered pipelines."""
    return _auto_mapped_modules() + [info["impl"].__module__ for info in _registered_pipelines().values()]


def _file_names(modules: list[str]) -> dict[str, str]:
    """Bundle file (without .py) of each module: its last component, or, for modules that share it, its
    path inside the package joined by underscores (`metrics_speaker_verification`)."""
    last = [_flat_name(module) for module in modules]
    names = {
        module: _flat_name(module) if last.count(_flat_name(module)) == 1 else "_".join(module.split(".")[1:])
        for module in modules
    }
    clashes = {name for name in names.values() if list(names.values()).count(name) > 1}
    # `auto_map` entries name the Auto-mapped classes' modules by their last component.
    renamed = [module for module in _auto_mapped_modules() if names[module] != _flat_name(module)]
    if clashes or renamed:
        raise ValueError(f"remote-code bundle: file names clash ({sorted(clashes | set(renamed))}); rename a module")
    return names


def _rewrite_imports(source: str, current: str, file_names: dict[str, str]) -> str:
    """Replace imports of bundled modules by single-dot relative imports of their bundle files."""
    lines = source.splitlines(keepends=True)
    edits = []
    for node, by_module in _bundled_imports(ast.parse(source), current):
        indent = lines[node.lineno - 1][: node.col_offset]
        replacement = "".join(
            f"{indent}from .{file_names[module]} import {', '.join(names)}\n" for module, names in by_module.items()
        )
        edits.append((node.lineno, node.end_lineno, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        lines[start - 1 : end] = [replacement]
    return "".join(lines)


def _registered_pipelines() -> dict[str, dict]:
    """transformers' pipeline-registry entries (`impl` class, `pt` model classes, ...) of `PIPELINE_PACKAGES`."""
    from transformers.pipelines import PIPELINE_REGISTRY

    return {
        task: info
        for task, info in sorted(PIPELINE_REGISTRY.supported_tasks.items())
        if isinstance(info["impl"], type) and info["impl"].__module__.split(".")[0] in PIPELINE_PACKAGES
    }


def bundled_pipelines() -> dict[str, dict]:
    """The registered pipelines of `PIPELINE_PACKAGES` as config.json `custom_pipelines` entries.

    Each entry names its class in the bundle and the transformers Auto classes that load its model,
    as `pipeline(task, model=folder, trust_remote_code=True)` expects.
    """
    served = {model_class: auto_class for auto_class, (_, model_class) in MODEL_CLASSES.items()}
    file_names = _file_names(sorted(_import_closure(_root_modules())))
    entries = {}
    for task, info in _registered_pipelines().items():
        auto_classes = []
        for model_class in info.get("pt", ()):
            auto_name = model_class.__name__ if model_class.__module__.startswith("transformers") else None
            auto_name = auto_name or served.get(model_class.__name__)
            if auto_name is None:
                raise ValueError(
                    f"pipeline {task!r} loads {model_class.__name__}, which no Auto class of the remote-code bundle "
                    f"serves ({sorted(served)}); register the pipeline with one of their Auto classes"
                )
            auto_classes.append(auto_name)
        impl = info["impl"]
        entry = {"impl": f"{file_names[impl.__module__]}.{impl.__name__}", "pt": auto_classes}
        entry.update({key: info[key] for key in ("type", "default") if key in info})
        entries[task] = entry
    return entries


def write_remote_code(folder: str | Path) -> list[str]:
    """Write the flat bundle into `folder`; returns the file names written.

    The bundle holds the modules that define the Auto-mapped classes (models, config, feature
    extractor, tokenizer, processor) and the registered pipelines, plus every bundled module they
    import. Package `__init__` files only re-export names, so imports from a package are redirected
    to the module that defines each name.
    """
    sources = _import_closure(_root_modules())
    file_names = _file_names(sorted(sources))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for module_name, source in sources.items():
        (folder / f"{file_names[module_name]}.py").write_text(
            _rewrite_imports(source, module_name, file_names), encoding="utf-8"
        )
    return sorted(f"{name}.py" for name in file_names.values())


def _update_json(path: Path, update: dict) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(update)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def add_auto_map(folder: str | Path) -> None:
    """Point config.json's `auto_map` at the bundle."""
    _update_json(Path(folder) / "config.json", {"auto_map": AUTO_MAP})


def add_custom_pipelines(folder: str | Path) -> None:
    """Write `bundled_pipelines()` into config.json's `custom_pipelines`."""
    _update_json(Path(folder) / "config.json", {"custom_pipelines": bundled_pipelines()})


def add_front_end_auto_map(folder: str | Path) -> None:
    """Point the front-end files' `auto_map` at the bundle.

    processor_config.json gets AutoProcessor at the top and AutoFeatureExtractor inside its nested
    `feature_extractor` (where transformers 5 looks first); preprocessor_config.json (the standalone
    feature-extractor file) gets AutoFeatureExtractor; tokenizer_config.json gets AutoTokenizer.
    Files that are absent are skipped.
    """
    folder = Path(folder)
    feature_extractor_map = {"AutoFeatureExtractor": _reference(FEATURE_EXTRACTOR_CLASS)}
    processor_path = folder / "processor_config.json"
    if processor_path.is_file():
        processor = json.loads(processor_path.read_text(encoding="utf-8"))
        update: dict = {"auto_map": {"AutoProcessor": _reference(PROCESSOR_CLASS)}}
        if isinstance(processor.get("feature_extractor"), dict):
            update["feature_extractor"] = {**processor["feature_extractor"], "auto_map": feature_extractor_map}
        _update_json(processor_path, update)
    if (folder / "preprocessor_config.json").is_file():
        _update_json(folder / "preprocessor_config.json", {"auto_map": feature_extractor_map})
    if (folder / "tokenizer_config.json").is_file():
        _update_json(
            folder / "tokenizer_config.json", {"auto_map": {"AutoTokenizer": [_reference(TOKENIZER_CLASS), None]}}
        )


def save_with_remote_code(model, folder: str | Path, **save_kwargs) -> None:
    """`model.save_pretrained(folder)` plus the remote-code bundle, `auto_map` and `custom_pipelines`."""
    model.save_pretrained(folder, **save_kwargs)
    write_remote_code(folder)
    add_auto_map(folder)
    add_custom_pipelines(folder)
    add_front_end_auto_map(folder)
