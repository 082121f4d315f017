"""The package's dependency direction: lower layers never import higher ones, the runtime never
imports the training package or the development helpers, and nothing outside tests/ imports the test
suite. A wrong-way import fails here, naming the file, line and layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "edge_ser"

# Lowest first. A module may import its own layer and any layer below it.
LAYERS = ("", "audio", "features", "model", "recognise", "protocol", "mqtt", "app", "monitor", "cli")
BASE_MODULES = {"__init__", "errors", "native_stderr"}


def layer_of(module: str) -> int:
    """Layer index of a dotted edge_ser module name (top-level helper modules are the base)."""
    parts = module.split(".")
    if parts[1:] == ["__main__"]:  # `python -m edge_ser` is the command line
        return LAYERS.index("cli")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in BASE_MODULES):
        return 0
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module}: not in any layer; add its package to LAYERS in {__file__}")
    return LAYERS.index(parts[1])


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file, including those inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; the project uses absolute ones"
            found.append((node.lineno, node.module or ""))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_points_up_a_layer(path: Path) -> None:
    here = module_name(path)
    wrong = []
    for line, target in imports(path):
        top = target.split(".")[0]
        if top in ("edge_ser_train", "edge_ser_testing", "tests", "bench"):
            wrong.append(f"{path.name}:{line} imports {target}: the runtime never imports build-time or test code")
        elif top == "edge_ser" and target != "edge_ser" and layer_of(target) > layer_of(here):
            wrong.append(f"{path.name}:{line} ({LAYERS[layer_of(here)] or 'base'}) imports {target} "
                         f"({LAYERS[layer_of(target)]}), a higher layer")
    assert not wrong, "\n".join(wrong)


OUTSIDE_TESTS = sorted(p for folder in ("edge_ser_train", "edge_ser_testing", "bench")
                       for p in (REPO / folder).rglob("*.py")
                       if not any(part.startswith(".") for part in p.relative_to(REPO).parts))  # venvs


@pytest.mark.parametrize("path", OUTSIDE_TESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_only_tests_import_the_test_suite(path: Path) -> None:
    """Training and benchmarks share helpers through edge_ser_testing, never by importing tests/;
    and those helpers stay plain Python, so a benchmark does not need pytest."""
    forbidden = ("tests", "pytest") if path.is_relative_to(REPO / "edge_ser_testing") else ("tests",)
    wrong = [f"{path.name}:{line} imports {target}" for line, target in imports(path)
             if target.split(".")[0] in forbidden]
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_catches_a_wrong_way_import(tmp_path: Path) -> None:
    """The check above can fail: a features module importing the MQTT layer is reported."""
    assert layer_of("edge_ser.mqtt.publisher") > layer_of("edge_ser.features.mfcc")
    assert layer_of("edge_ser.errors") == 0
    with pytest.raises(AssertionError, match="not in any layer"):
        layer_of("edge_ser.nowhere.module")


def test_every_subpackage_is_a_layer() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(LAYERS) - {""}


def test_cli_help_loads_neither_numpy_nor_paho() -> None:
    """`edge-ser devices --help` must start instantly on a Pi Zero: argparse only."""
    code = ("import sys\nimport edge_ser.cli\ntry:\n    edge_ser.cli.main(['devices', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('numpy', 'paho', 'scipy', 'sqlite3', 'ssl') if m in sys.modules)\n"
            "print('HEAVY=' + ','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage: edge-ser devices" in out
    assert out.strip().endswith("HEAVY="), out
