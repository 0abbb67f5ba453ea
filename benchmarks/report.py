"""The markdown table of `latest.md` (the README quotes it), from the results dict."""

from __future__ import annotations

from typing import Any

__all__ = ["TARGETS", "markdown"]

TARGETS = {
    "pipeline_vs_httpx_stack": 0.8,
    "pipeline_vs_naive_prefect": 10.0,
    "latency_share_of_ideal": 0.9,
    "rate_share_of_limit": 0.95,
    "memory_ratio": 1.3,
}


def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}" if value < 0.995 or value > 1.005 else f"{value:.1%}"


def _ok(met: bool | None) -> str:
    return "" if met is None else "yes" if met else "**no**"


def markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    rows: list[tuple[str, str, str, str]] = []
    throughput = results.get("throughput")
    if throughput:
        rps, ratios, c = throughput["rows_per_second"], throughput["ratios"], throughput["concurrency"]
        n = f"{throughput['rows']:,}"
        rows += [
            (f"Pipeline (`bulk_enrich`), no latency, {n} rows, C={c}: validate, execute, normalize, Parquet",
             f"{_n(rps['pipeline'])} rows/s", "", ""),
            (f"(a) bare asyncio loop, same HTTP stack (httpx over `build_transport`), {n} rows",
             f"{_n(rps['httpx_stack'])} rows/s", "", ""),
            (f"(b) bare aiohttp loop, {n} rows", f"{_n(rps['aiohttp'])} rows/s", "", ""),
            (f"(c) naive Prefect flow, one task per row, {throughput['naive_rows']:,} rows",
             f"{_n(rps['naive_prefect'])} rows/s", "", ""),
            ("pipeline / (a)", f"{ratios['pipeline_vs_httpx_stack']:.3f}", "≥ 0.80",
             _ok(ratios["pipeline_vs_httpx_stack"] >= TARGETS["pipeline_vs_httpx_stack"])),
            ("pipeline / (b)", f"{ratios['pipeline_vs_aiohttp']:.2f}", "", ""),
            ("pipeline / (c)", f"{ratios['pipeline_vs_naive_prefect']:.1f}×", "≥ 10×",
             _ok(ratios["pipeline_vs_naive_prefect"] >= TARGETS["pipeline_vs_naive_prefect"])),
        ]
    latency = results.get("latency")
    if latency:
        rows.append((f"Latency hiding: {latency['latency_ms']:.0f} ms per call, C={latency['concurrency']}, "
                     f"{latency['rows']:,} rows (ideal {latency['ideal_rows_per_second']:.0f}/s)",
                     f"{_n(latency['rows_per_second'])} rows/s = {_pct(latency['share_of_ideal'])} of ideal; "
                     f"while sending {_pct(latency.get('sending_share_of_ideal'))}; "
                     f"(a): {_pct(latency['httpx_stack_share_of_ideal'])}", "≥ 90%",
                     _ok(latency["share_of_ideal"] >= TARGETS["latency_share_of_ideal"])))
    rate = results.get("rate_limit")
    if rate:
        limit = rate["limit"]
        late = rate["responses_429_after_first_second"]
        rows.append((f"Rate limit {limit['requests']}/{limit['per_seconds']:g} s per token, client "
                     f"{rate['client_rate_per_minute']:,.0f}/min ({rate['headroom']:.1%} headroom), "
                     f"{rate['rows']:,} rows",
                     f"{_pct(rate['share_of_limit'])} of the limit (steady {_pct(rate['steady_share_of_limit'])}); "
                     f"429s: {rate['responses_429']}, after the first second: {_n(late)}",
                     "≥ 95%; 0 after 1 s",
                     _ok(rate["share_of_limit"] >= TARGETS["rate_share_of_limit"] and late == 0)))
    memory = results.get("memory")
    if memory:
        runs = memory["runs"]
        sizes = sorted(runs, key=int)
        rows.append((f"Peak RSS, fresh process: {' / '.join(f'{int(s):,}' for s in sizes)} rows",
                     " / ".join(f"{runs[s]['peak_rss_mib']:.0f} MiB" for s in sizes) + f"; ratio {memory['ratio']:.2f}",
                     "≤ 1.3", _ok(memory["ratio"] <= TARGETS["memory_ratio"])))
    resume = results.get("resume")
    if resume:
        rows.append((f"Resume: rerun a finished {resume['rows']:,}-row run with its run id",
                     f"{resume['seconds']:.2f} s; {resume['executions_sent']} rows sent again "
                     f"({resume['api_requests']} API request: the health check)", "0 rows sent",
                     _ok(resume["executions_sent"] == 0)))
    emulator = results.get("emulator")
    if emulator:
        rows.append((f"Emulator capacity (aiohttp, C={emulator['concurrency']}, own process)",
                     f"{_n(emulator['requests_per_second'])} requests/s (emulator CPU {emulator.get('cpu_emulator')})",
                     "", ""))
    setup = results.get("setup")
    if setup:
        rows.append(("Prefect ephemeral API start + first flow (excluded above); a 200-row flow after it",
                     f"{setup['first_flow_seconds']:.1f} s; {setup['flow_200_rows_seconds']:.2f} s", "", ""))
    lines = ["| figure | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines.append("")
    lines.append(_footer(meta, results))
    return "\n".join(lines) + "\n"


def _footer(meta: dict[str, Any], results: dict[str, Any]) -> str:
    setup = results.get("setup", {})
    parts = [f"{meta.get('date', '?')}", f"{meta.get('cpus', '?')} CPUs", f"Python {meta.get('python', '?')}",
             f"Prefect {meta.get('prefect', '?')}", f"event loop {meta.get('loop', '?')}",
             f"batch size {setup.get('batch_size', '?')}", f"batches in flight {setup.get('batches_in_flight', '?')}",
             f"load average at start {meta.get('load_average_start')}", f"total {meta.get('total_seconds', '?')} s"]
    cpu = (results.get("throughput") or {}).get("cpu_median")
    text = "_" + "; ".join(parts) + "._"
    if cpu:
        def shares(name: str) -> str:
            return ", ".join(f"{key.removeprefix('cpu_')} {value:.2f}" for key, value in cpu.get(name, {}).items())
        text += (f"\n\n_CPU used during the throughput runs, in cores (median): pipeline: {shares('pipeline')}; "
                 f"(a): {shares('httpx_stack')}; (b): {shares('aiohttp')}._")
    if meta.get("quick"):
        text += "\n\n_Quick run (small sizes): not comparable with the full figures._"
    return text
