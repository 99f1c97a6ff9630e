"""The layering of DESIGN.md, enforced twice: statically (import-linter's contracts in
pyproject.toml) and at run time (what importing a module really pulls in)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by(module: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True, text=True,
                         check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                         timeout=60).stdout
    return set(json.loads(out))


def roots(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("module", ["console.model", "console.policy", "console.state",
                                    "console.store", "console.engine", "console.export",
                                    "console.export.pir", "console.config", "console.cli",
                                    "console.wiring", "console.guardrails"])
def test_the_core_never_imports_textual(module: str) -> None:
    loaded = roots(loaded_by(module))
    assert "textual" not in loaded and "widgets" not in loaded, module
    assert "console.app" not in loaded_by(module)


@pytest.mark.parametrize("module", ["adapters.base", "adapters.settings", "adapters.sim",
                                    "adapters.http", "adapters.command", "adapters.prometheus"])
def test_adapters_never_import_the_console(module: str) -> None:
    loaded = roots(loaded_by(module))
    assert not loaded & {"console", "widgets", "textual"}, module


def test_the_cli_starts_without_heavy_libraries() -> None:
    loaded = roots(loaded_by("console.cli"))
    assert not loaded & {"textual", "httpx", "prometheus_api_client", "requests",
                         "textual_plotext", "sqlite_utils", "rich"}


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "3 kept, 0 broken" in result.stdout
