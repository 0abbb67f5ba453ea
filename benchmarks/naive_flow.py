"""Baseline (c): the Prefect flow one would write first — one task per row.

Each row is its own task run (Prefect's defaults: default cache policy, result not persisted), doing the
same execute call over the same HTTP stack as the pipeline. Async tasks called from the async flow run on the
flow's event loop, `concurrency` at a time, and share one client; `.map` would run each async task on a worker
thread with its own event loop, where they could not share it. The flow writes the answers to one Parquet file.
"""

from __future__ import annotations

import asyncio
import json
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task

from benchmarks.harness import fetch_token, load_payloads
from dataactions.transport import CookielessAsyncClient, build_transport

__all__ = ["naive_enrich"]

_http: ContextVar[tuple[httpx.AsyncClient, httpx.URL, dict[str, str]]] = ContextVar("naive_http")


@task(name="execute-row", retries=3, retry_delay_seconds=1)
async def execute_row(payload: dict[str, Any]) -> dict[str, Any]:
    http, url, headers = _http.get()
    response = await http.post(url, content=json.dumps(payload, separators=(",", ":")).encode(), headers=headers)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@flow(name="naive-enrich")
async def naive_enrich(input_path: str, base_url: str, action_id: str, concurrency: int,
                       output: str) -> dict[str, Any]:
    payloads = load_payloads(Path(input_path))
    token = fetch_token(base_url)
    url = httpx.URL(f"{base_url.rstrip('/')}/api/v2/integrations/actions/{action_id}/execute")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    slots = asyncio.Semaphore(concurrency)

    async def one(payload: dict[str, Any]) -> dict[str, Any] | None:
        async with slots:
            try:
                return await execute_row(payload)
            except Exception:
                return None

    async with CookielessAsyncClient(transport=build_transport(concurrency + 1), timeout=60.0) as http:
        _http.set((http, url, headers))
        answers = await asyncio.gather(*(one(payload) for payload in payloads))
    table = pa.table({"row_number": list(range(1, len(answers) + 1)),
                      "raw_answer": [None if a is None else json.dumps(a) for a in answers]})
    pq.write_table(table, output, compression="zstd")
    return {"rows": len(answers), "failed": sum(a is None for a in answers)}
