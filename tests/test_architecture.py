"""The layering the design promises: the library runs without Prefect; flows and tasks stay thin."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import dataactions

ROOT = Path(__file__).resolve().parents[1]


def library_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(dataactions.__path__, "dataactions.")
                  if not m.name.endswith("__main__"))


def test_the_library_imports_without_prefect() -> None:
    imports = "; ".join(f"import {name}" for name in library_modules())
    probe = f"import sys; {imports}; print('prefect' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "False"


def test_flows_and_tasks_do_no_http_jsonpath_or_parquet_work() -> None:
    forbidden = {"httpx", "aiohttp", "jsonpath_ng", "pyarrow", "pandas"}
    for path in [*ROOT.glob("flows/*.py"), *ROOT.glob("tasks/*.py")]:
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & forbidden, f"{path.name} imports {imported & forbidden}"
