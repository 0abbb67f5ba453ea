"""What the pipeline is measured against: the same execute calls without the pipeline.

(a) `httpx_stack_loop`: a bare asyncio loop over the pipeline's own HTTP stack — the pipeline's
    `httpx.AsyncClient` (`CookielessAsyncClient`) on the transport `dataactions.transport.build_transport`
    builds, same concurrency, same token. The ceiling for the
    stack: whatever the pipeline adds (validation, retries, breaker, metrics, normalization, Parquet, Prefect) is
    the gap between it and this.
(b) `aiohttp_loop`: the same calls with plain aiohttp, the fastest asyncio client here: the machine's ceiling.
(c) `naive_prefect_flow`: what a first Prefect version would do: one task per row (the same call over the same
    stack), answers collected and written to Parquet by the flow.

Every loop does the same work per row: encode the JSON body, POST it with the bearer token, read the answer and
decode its JSON; C workers pull rows from one shared iterator, so at most C requests are in flight.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from dataactions.transport import CookielessAsyncClient, build_transport

__all__ = ["aiohttp_loop", "execute_url", "httpx_stack_loop", "naive_prefect_flow"]


def execute_url(base_url: str, action_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/v2/integrations/actions/{action_id}/execute"


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def _drain(rows: Iterator[dict[str, Any]], call: Callable[[bytes], Awaitable[int]],
                 failures: list[int]) -> None:
    for payload in rows:
        status = await call(_encode(payload))
        if status != 200:
            failures.append(status)


async def _workers(payloads: list[dict[str, Any]], concurrency: int,
                   call: Callable[[bytes], Awaitable[int]]) -> dict[str, Any]:
    rows, failures = iter(payloads), []  # type: ignore[var-annotated]
    started = time.perf_counter()
    await asyncio.gather(*(_drain(rows, call, failures) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"rows": len(payloads), "seconds": seconds, "rows_per_second": len(payloads) / seconds,
            "failed": len(failures)}


async def httpx_stack_loop(base_url: str, action_id: str, token: str, payloads: list[dict[str, Any]],
                           concurrency: int) -> dict[str, Any]:
    """(a) The pipeline's HTTP stack, bare: its `httpx.AsyncClient` subclass over `build_transport(concurrency + 1)`."""
    url = httpx.URL(execute_url(base_url, action_id))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    defaults = {"User-Agent": "dataactions/0.1", "Accept": "application/json"}  # as `GenesysClient` sets them
    async with CookielessAsyncClient(transport=build_transport(concurrency + 1), timeout=60.0,
                                     headers=defaults) as http:

        async def call(body: bytes) -> int:
            response = await http.post(url, content=body, headers=headers)
            json.loads(response.content)
            return response.status_code

        await call(_encode(payloads[0]))  # open a connection and warm the path before the clock starts
        return await _workers(payloads, concurrency, call)


async def aiohttp_loop(base_url: str, action_id: str, token: str, payloads: list[dict[str, Any]],
                       concurrency: int) -> dict[str, Any]:
    """(b) Plain aiohttp, the same calls: the machine's ceiling for an asyncio client."""
    url = execute_url(base_url, action_id)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def call(body: bytes) -> int:
            async with session.post(url, data=body) as response:
                json.loads(await response.read())
                return response.status

        await call(_encode(payloads[0]))
        return await _workers(payloads, concurrency, call)


async def naive_prefect_flow(base_url: str, action_id: str, input_path: Path, rows: int, concurrency: int,
                             output: Path) -> dict[str, Any]:
    """(c) One Prefect task per row, `concurrency` of them running at once on the flow's event loop, each doing
    the same call over the same stack; the flow writes the answers to one Parquet file. Timed around the flow
    call, like the pipeline."""
    from benchmarks.naive_flow import naive_enrich

    started = time.perf_counter()
    result = await naive_enrich(str(input_path), base_url, action_id, concurrency, str(output))
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds,
            "failed": result["failed"]}
