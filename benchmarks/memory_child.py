"""One pipeline run in a fresh process, reporting its peak RSS: `python -m benchmarks.memory_child ARGS`.

The parent points the environment at the emulator (and at its Prefect API, so this process starts no server of
its own); this process runs `bulk_enrich` the way the command line does and prints one JSON line:
`{"rows", "seconds", "rss_before_mib", "peak_rss_mib"}`. `ru_maxrss` covers this process only (KiB on Linux).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from benchmarks.harness import ACTION_ID, MAPPING, run_async


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--loop", default="asyncio")
    args = parser.parse_args()

    from flows.enrich import bulk_enrich

    rss_before = _rss_mib()
    started = time.perf_counter()
    report = run_async(bulk_enrich(input_path=args.input, action_id=ACTION_ID, mapping_path=str(MAPPING),
                                   output_dir=args.output, run_id=args.run_id, rate_per_minute=0,
                                   concurrency=args.concurrency, key_column="customer_ref"), args.loop)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": report["rows"], "succeeded": report["succeeded"], "seconds": round(seconds, 2),
                      "rss_before_mib": round(rss_before, 1), "peak_rss_mib": round(peak, 1)}), flush=True)


if __name__ == "__main__":
    main()
