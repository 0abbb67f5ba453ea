"""Helpers for the flow tests: inputs, one call of `bulk_enrich`, reading results and the emulator's counts."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pandas as pd

from dataactions.emulator import EmulatorServer, input_digest
from flows.enrich import bulk_enrich
from tests.flows.conftest import CUSTOMER_ACTION

MAPPING = Path(__file__).resolve().parents[2] / "data" / "mappings" / "customer_by_phone.yaml"
WORKFLOW = "wf-enrich-customer"


def phone(n: int) -> str:
    return f"+1555{n:07d}"


def write_customers(path: Path, phones: list[str]) -> Path:
    """customer_ref C0001..., phoneNumber, segment: rows keyed C0001 onwards."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_ref", "phoneNumber", "segment"])
        writer.writerows([f"C{n:04d}", p, "retail"] for n, p in enumerate(phones, start=1))
    return path


def enrich(input_path: Path | None, output_dir: Path, run_id: str | None, **options: Any) -> dict[str, Any]:
    options = {"action_id": CUSTOMER_ACTION, "mapping_path": str(MAPPING), "rate_per_minute": 0,
               "batch_size": 16, "concurrency": 8, "key_column": "customer_ref"} | options
    return asyncio.run(bulk_enrich(input_path=str(input_path) if input_path else None, output_dir=str(output_dir),
                                   run_id=run_id, **options))


def results(output_dir: Path, run_id: str) -> pd.DataFrame:
    frame = pd.read_parquet(output_dir / "results", filters=[("run_id", "=", run_id)])
    return frame.set_index("row_key").sort_index()


def audit(output_dir: Path, run_id: str) -> pd.DataFrame:
    return pd.read_parquet(output_dir / "audit", filters=[("run_id", "=", run_id)]).set_index("row_key").sort_index()


def sent(emulator: EmulatorServer, payload: dict[str, Any], action: str = CUSTOMER_ACTION) -> int:
    return int(emulator.stats()["by_input"].get(action, {}).get(input_digest(payload), 0))


def executions(emulator: EmulatorServer, action: str = CUSTOMER_ACTION) -> int:
    return int(emulator.stats(include_inputs=False)["executions"].get(action, 0))
