"""`python -m dataactions.emulator [--host H] [--port P] [--scenario FILE]`."""

from __future__ import annotations

import argparse
import sys

from dataactions.emulator.scenario import DEFAULT_SCENARIO_PATH, load_scenario
from dataactions.emulator.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataactions.emulator", description="Serve the Genesys Cloud emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default: 8765)")
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO_PATH), help="scenario YAML or JSON file")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(scenario, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
