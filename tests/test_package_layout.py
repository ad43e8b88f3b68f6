"""The package layout is the architecture: configuration ← modeling ← processing is what a released model
folder ships; everything that needs a corpus, a run or a command line lives in training."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "configuration_mt2kd": "configuration_mt2kd",
    "modeling_mt2kd": "modeling_mt2kd",
    "processing_mt2kd": "processing",
    "training_mt2kd": "training",
}
# What each released package may import from the project's own packages.
ALLOWED = {
    "configuration_mt2kd": {"configuration_mt2kd"},
    "modeling_mt2kd": {"configuration_mt2kd", "modeling_mt2kd"},
    "processing_mt2kd": {"configuration_mt2kd", "modeling_mt2kd", "processing_mt2kd"},
}


def _module_name(package: str, path: Path) -> str:
    relative = path.relative_to(REPO_ROOT / FOLDERS[package]).with_suffix("")
    parts = [package, *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(package: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file, relative imports resolved."""
    module = _module_name(package, path)
    current_package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    imported = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = current_package.split(".")[: len(current_package.split(".")) - node.level + 1]
                imported.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
            else:
                imported.append((node.lineno, node.module))
    return imported


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_released_packages_import_only_downwards(package):
    offending = []
    for path in sorted((REPO_ROOT / FOLDERS[package]).rglob("*.py")):
        for line, module in _imported_modules(package, path):
            top = module.split(".")[0]
            if top in FOLDERS and top not in ALLOWED[package]:
                offending.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
    assert not offending, "\n".join(offending)


def test_importing_the_released_packages_loads_no_training_code():
    code = (
        "import sys, processing_mt2kd, modeling_mt2kd, configuration_mt2kd\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0].endswith('_mt2kd')}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.strip() == "['configuration_mt2kd', 'modeling_mt2kd', 'processing_mt2kd']"


def test_remote_code_bundle_is_built_from_the_released_packages_only(tmp_path):
    from training_mt2kd.release import remote_code

    assert set(remote_code.BUNDLED_PACKAGES) == set(ALLOWED)
    closure = remote_code._import_closure(remote_code._root_modules())
    assert {module.split(".")[0] for module in closure} <= set(ALLOWED)
    written = remote_code.write_remote_code(tmp_path)
    for name in written:
        tree = ast.parse((tmp_path / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert node.module.split(".")[0] not in FOLDERS, f"{name} imports {node.module}"
