"""The benchmark harness's pure parts: merging the naive runs, ratios, the markdown table (no servers, no timing)."""

from __future__ import annotations

from benchmarks.report import markdown
from benchmarks.scenarios import _sending_rate, with_naive


def run(rows_per_second: float) -> dict[str, float]:
    return {"rows_per_second": rows_per_second, "cpu_client": 0.9, "client_cpu_us_per_row": 1e6 / rows_per_second}


def test_ratios_are_of_the_medians_and_the_table_says_which_targets_are_met() -> None:
    throughput = {"rows": 200, "concurrency": 8, "reps": 3, "runs": {
        "pipeline": [run(900), run(800), run(1000)], "httpx_stack": [run(1000)] * 3, "aiohttp": [run(2000)] * 3}}
    merged = with_naive(throughput, {"rows": 20, "runs": [run(50), run(60), run(70)]})

    assert merged["rows_per_second"]["pipeline"] == 900
    assert merged["ratios"] == {"pipeline_vs_httpx_stack": 0.9, "pipeline_vs_aiohttp": 0.45,
                                "pipeline_vs_naive_prefect": 15.0}
    table = markdown({"meta": {"cpus": 2}, "throughput": merged,
                      "resume": {"rows": 200, "seconds": 0.5, "executions_sent": 0, "api_requests": 1}})
    assert "| pipeline / (a) | 0.900 | ≥ 0.80 | yes |" in table
    assert "| pipeline / (c) | 15.0× | ≥ 10× | yes |" in table
    assert "0 rows sent again" in table


def test_the_sending_rate_spans_the_first_to_the_last_execute_on_the_emulators_clock() -> None:
    assert _sending_rate({"executions": {"a": 201}, "execution_span": [10.0, 12.0]}) == 100.0
    assert _sending_rate({"executions": {"a": 1}, "execution_span": [10.0, 10.0]}) is None
    assert _sending_rate({"executions": {}, "execution_span": []}) is None
