"""The analyst notebook runs top to bottom in a real Jupyter kernel on the outputs of real `bulk_enrich` runs.

Two runs land in one output folder (an older clean one, then a newer one with failed and rejected rows); the
notebook's `parameters` cell is replaced to point at that folder, and nbclient fails the test on any cell error.
The kernel is this interpreter (a kernelspec written for the test), whatever kernelspecs the machine has.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode

from dataactions.emulator import EmulatorServer, Scenario
from flows.enrich import bulk_enrich

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "explore_results.ipynb"
MAPPING = REPO / "data" / "mappings" / "customer_by_phone.yaml"
ACTION = "custom_-_customer-by-phone"
OLDER_RUN, LATEST_RUN = "nb-older", "nb-latest"
FAILING_PHONE, INVALID_PHONE = "+15550000003", "not-a-phone"


def read_notebook() -> NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def code_cells(notebook: NotebookNode) -> list[NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_committed_notebook_is_valid_and_has_no_outputs() -> None:
    notebook = read_notebook()
    nbformat.validate(notebook)
    dirty = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert dirty == [], f"cells {dirty} carry outputs: clear them before committing"


def test_its_first_code_cell_holds_the_parameters() -> None:
    cells = code_cells(read_notebook())
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == cells[:1]
    assert 'OUTPUT_DIR = "../data/output"' in tagged[0].source and "RUN_ID = None" in tagged[0].source


def write_customers(path: Path, phones: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_ref", "phoneNumber"])
        writer.writerows([f"N{n:04d}", phone] for n, phone in enumerate(phones, start=1))
    return path


def enrich(source: Path, output_dir: Path, run_id: str) -> dict[str, Any]:
    return asyncio.run(bulk_enrich(input_path=str(source), action_id=ACTION, mapping_path=str(MAPPING),
                                   output_dir=str(output_dir), run_id=run_id, key_column="customer_ref",
                                   batch_size=10, concurrency=8, rate_per_minute=0))


@pytest.fixture(scope="module")
def output_dir(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two runs in one output folder: `nb-older` all succeeded, then `nb-latest` with a failed and a rejected row."""
    folder = tmp_path_factory.mktemp("notebook-runs")
    scenario = Scenario.default().model_copy(update={"rate_limit": None})
    credentials = scenario.credentials[0]
    with EmulatorServer(scenario) as emulator, pytest.MonkeyPatch.context() as env:
        env.setenv("GENESYS_API_BASE_URL", emulator.base_url)
        env.setenv("GENESYS_CLIENT_ID", credentials.client_id)
        env.setenv("GENESYS_CLIENT_SECRET", credentials.client_secret)
        env.setenv("DATAACTIONS_AUDIT_KEY", "notebook-tests-audit-key-0123456789")
        env.delenv("GENESYS_REGION", raising=False)
        env.delenv("GENESYS_LOGIN_BASE_URL", raising=False)
        phones = [f"+1555{n:07d}" for n in range(30)]
        enrich(write_customers(folder / "older.csv", phones[:12]), folder / "out", OLDER_RUN)
        emulator.configure(faults=[{"kind": "status", "status": 500, "match": {"phoneNumber": FAILING_PHONE}}],
                           latency={"distribution": "uniform", "min_ms": 1, "max_ms": 30})
        report = enrich(write_customers(folder / "latest.csv", [*phones, INVALID_PHONE]), folder / "out", LATEST_RUN)
    assert (report["succeeded"], report["failed"], report["rejected"]) == (29, 1, 1)
    yield folder / "out"


@pytest.fixture(scope="module")
def kernel_spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec for this very interpreter, so the kernel sees the project's packages on any machine."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / "dataactions-test"
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dataactions (tests)", "language": "python", "env": {"MPLBACKEND": "Agg"}}))
    return kernels


def execute(kernel_spec_dir: Path, output_dir: Path, run_id: str | None) -> NotebookNode:
    """Run the notebook with its parameters replaced; nbclient raises CellExecutionError on any cell error."""
    notebook = read_notebook()
    parameters = next(cell for cell in code_cells(notebook) if "parameters" in cell.metadata.get("tags", []))
    parameters.source = f"OUTPUT_DIR = {str(output_dir)!r}\nRUN_ID = {run_id!r}\n"
    kernel = KernelManager(kernel_name="dataactions-test",
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)]))
    try:
        NotebookClient(notebook, km=kernel, timeout=180, startup_timeout=120,
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        if kernel.has_kernel:  # nbclient leaves a kernel it was handed running
            kernel.shutdown_kernel(now=True)
    return notebook


def shown_text(notebook: NotebookNode) -> str:
    """Everything the cells printed or displayed as text."""
    parts: list[str] = []
    for cell in code_cells(notebook):
        for output in cell.outputs:
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_by_default_it_explains_the_latest_run(kernel_spec_dir: Path, output_dir: Path) -> None:
    text = shown_text(execute(kernel_spec_dir, output_dir, None))

    assert f"this notebook shows run: {LATEST_RUN}" in text
    assert f"runs (newest first): ['{LATEST_RUN}', '{OLDER_RUN}']" in text
    assert "31 result rows, 31 audit rows" in text
    assert "internal.server.error" in text and "ACTION.REMOTE_ENDPOINT" in text  # the failed row's code and message
    assert "rejected" in text and "phoneNumber" in text                           # the rejected row's reason
    assert "lifetime_value" in text and "29 succeeded rows" in text               # describe() of the mapped columns


def test_a_run_id_parameter_selects_that_run(kernel_spec_dir: Path, output_dir: Path) -> None:
    text = shown_text(execute(kernel_spec_dir, output_dir, OLDER_RUN))

    assert f"this notebook shows run: {OLDER_RUN}" in text
    assert "12 result rows, 12 audit rows" in text
    assert "every row succeeded: no errors to break down" in text
