"""Emulator capacity: small execute requests per second served to a bare aiohttp client.

The emulator runs in its own process (`EmulatorProcess`) with no latency, no rate limit and no
concurrency limit; 64 aiohttp workers post executes for a fixed time after a short warm-up.
Prints one JSON object. Usage: `python benchmarks/emulator_capacity.py [--seconds 5] [--concurrency 64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from typing import Any

import aiohttp
import httpx

from dataactions.emulator import EmulatorProcess, Scenario

ACTION_ID = "custom_-_customer-by-phone"


def unthrottled_scenario() -> Scenario:
    data = Scenario.default().model_dump(mode="json")
    data.update(rate_limit=None, concurrent_executions_max=None, latency=0, faults=[])
    return Scenario.model_validate(data)


def fetch_token(base_url: str) -> str:
    response = httpx.post(
        f"{base_url}/oauth/token",
        auth=("demo-client", "demo-secret"),
        data={"grant_type": "client_credentials"},
        trust_env=False,
    )
    response.raise_for_status()
    return response.json()["access_token"]


async def worker(
    session: aiohttp.ClientSession, url: str, worker_id: int, stop_at: float, counts: dict[str, int]
) -> None:
    sequence = 0
    while time.perf_counter() < stop_at:
        sequence += 1
        body = {"phoneNumber": f"+1555{worker_id:03d}{sequence % 10000:04d}"}
        async with session.post(url, json=body) as response:
            await response.read()
            counts["ok" if response.status == 200 else "failed"] += 1


async def drive(base_url: str, token: str, seconds: float, concurrency: int, warmup: float) -> dict[str, Any]:
    url = f"{base_url}/api/v2/integrations/actions/{ACTION_ID}/execute"
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        await _run(session, url, concurrency, warmup, {"ok": 0, "failed": 0})
        counts = {"ok": 0, "failed": 0}
        started = time.perf_counter()
        await _run(session, url, concurrency, seconds, counts)
        elapsed = time.perf_counter() - started
    return {"requests": counts["ok"] + counts["failed"], "failed": counts["failed"], "elapsed_s": round(elapsed, 3)}


async def _run(
    session: aiohttp.ClientSession, url: str, concurrency: int, seconds: float, counts: dict[str, int]
) -> None:
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(worker(session, url, index, stop_at, counts) for index in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    with EmulatorProcess(unthrottled_scenario()) as emulator:
        token = fetch_token(emulator.base_url)
        result = _event_loop_run(drive(emulator.base_url, token, args.seconds, args.concurrency, args.warmup))
        max_in_flight = emulator.stats(include_inputs=False)["max_in_flight"]
    rate = result["requests"] / result["elapsed_s"]
    print(
        json.dumps(
            {
                "benchmark": "emulator_capacity",
                "client": f"aiohttp {aiohttp.__version__}",
                "concurrency": args.concurrency,
                "requests_per_second": round(rate, 1),
                "server_max_in_flight": max_in_flight,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                **result,
            }
        )
    )


def _event_loop_run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    main()
