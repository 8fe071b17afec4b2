"""Import hygiene: the pure layers never pull in the UI toolkit.

Each check runs in a fresh interpreter, so modules imported by other tests in this
process cannot hide (or fake) a violation."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("textual", "rich")


def loaded_modules(module: str) -> list[str]:
    code = f"import importlib, json, sys\nimportlib.import_module({module!r})\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def forbidden_in(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in FORBIDDEN]


def test_checker_sees_forbidden_imports():
    """Guard for the check itself: importing rich directly must be caught."""
    pytest.importorskip("rich")
    assert forbidden_in(loaded_modules("rich"))


@pytest.mark.parametrize("module", ["blotter.protocol", "blotter.core"])
def test_pure_layers_do_not_import_ui(module):
    modules = loaded_modules(module)
    assert module in modules
    assert forbidden_in(modules) == []


@pytest.mark.parametrize("module", ["blotter.net.session", "blotter.net.rest", "blotter.desk", "blotter.sim"])
def test_io_layers_do_not_import_ui(module):
    """No Textual and nothing of blotter.ui below the UI. (Rich may be loaded here: httpx,
    the REST road's HTTP client, imports its own command line, which uses Rich, whenever
    Rich is installed; Rich alone draws nothing.)"""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        pytest.skip(f"{module} does not exist yet")
    modules = loaded_modules(module)
    assert module in modules
    assert [m for m in modules if m.split(".")[0] == "textual" or m.startswith("blotter.ui")] == []
