"""The `dataactions` command line.

Exit status: 0 the run completed (failed rows are data, not a crash); 2 bad arguments or settings;
3 the health check failed (nothing was sent); 4 the run stopped itself (circuit breaker or failed-row ceiling;
committed batches are kept, rerun with the same --run-id to resume); 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dataactions.errors import (
    CircuitOpenError,
    ConfigurationError,
    DataActionsError,
    HealthCheckFailed,
    RunStopped,
)

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNHEALTHY, EXIT_STOPPED = 0, 1, 2, 3, 4
REPO_DATA = Path("data")

_EXAMPLES_ENRICH = """examples:
  dataactions enrich data/sample/customers.csv --action custom_-_customer-by-phone \\
      --mapping data/mappings/customer_by_phone.yaml --output data/output --run-id nightly-2026-12-04
  dataactions enrich rows.jsonl --mode workflow --flow-id wf-enrich-customer --run-id wf-1
  dataactions enrich rows.parquet --action ID --run-id nightly-2026-12-04      # rerun: resumes
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or EXIT_OK)
    except ConfigurationError as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    except HealthCheckFailed as exc:
        return _fail(f"health check failed, nothing was sent: {exc}", EXIT_UNHEALTHY)
    except (RunStopped, CircuitOpenError) as exc:
        return _fail(f"run stopped: {exc}", EXIT_STOPPED)
    except DataActionsError as exc:
        return _fail(f"error: {exc}", EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted; committed batches are kept, rerun with the same --run-id to resume", 130)


def _fail(message: str, status: int) -> int:
    print(message, file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataactions", description="Run Genesys Cloud Data Actions in bulk, orchestrated by Prefect.",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_enrich(commands)
    _add_demo(commands)
    _add_emulator(commands)
    _add_actions(commands)
    return parser


def _command(commands: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int],
             epilog: str | None = None) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(handler=handler)
    return sub


def _add_enrich(commands: Any) -> None:
    sub = _command(commands, "enrich", "Enrich every row of INPUT (CSV, Parquet or JSONL) with a data action.",
                   _enrich, _EXAMPLES_ENRICH)
    sub.add_argument("input", help="input file: .csv, .parquet or .jsonl")
    sub.add_argument("--action", dest="action_id", help="data action id (execute mode)")
    sub.add_argument("--mapping", dest="mapping_path", help="YAML mapping: output column -> JSONPath + type")
    sub.add_argument("--output", dest="output_dir", help="output directory (default: DATAACTIONS_OUTPUT_DIR)")
    sub.add_argument("--run-id", help="name of the run; rerunning the same id resumes it (default: new id)")
    sub.add_argument("--mode", choices=["execute", "workflow"], default="execute")
    sub.add_argument("--flow-id", help="Architect workflow id (workflow mode)")
    sub.add_argument("--batch-size", type=int)
    sub.add_argument("--concurrency", type=int, help="requests in flight at most")
    sub.add_argument("--rate-per-minute", type=float, help="requests per minute per token (0: no client limit)")
    sub.add_argument("--key-column", help="input column that names each row (default: the row number)")
    sub.add_argument("--flatten", action="store_true", help="ask Genesys for Architect-flattened answers")
    sub.add_argument("--max-failed-rows", type=float,
                     help="stop cleanly past this many failed rows (or this share, when below 1)")
    sub.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_demo(commands: Any) -> None:
    sub = _command(commands, "demo", "Run the whole job on the bundled emulator and the sample input.", _demo)
    sub.add_argument("--output", dest="output_dir", default=str(REPO_DATA / "output"))
    sub.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_emulator(commands: Any) -> None:
    sub = _command(commands, "emulator", "Serve the local Genesys Cloud emulator.", _emulator)
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8765)
    sub.add_argument("--scenario", help="scenario YAML/JSON (default: the packaged default scenario)")


def _add_actions(commands: Any) -> None:
    sub = _command(commands, "actions", "Read the data action catalog.", lambda a: _usage(sub))
    verbs = sub.add_subparsers(title="verbs", metavar="VERB")
    _command(verbs, "list", "List published actions.", _actions_list).add_argument("--name")
    show = _command(verbs, "show", "Show one action with its contract.", _actions_show)
    show.add_argument("action_id")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _enrich(args: argparse.Namespace) -> int:
    from dataactions.console import run_enrich

    parameters = {k: v for k, v in vars(args).items() if k not in {"handler", "json", "input"}}
    return run_enrich({"input_path": args.input, **parameters}, as_json=args.json)


def _demo(args: argparse.Namespace) -> int:
    from dataactions.console import run_demo

    return run_demo(args.output_dir, as_json=args.json)


def _emulator(args: argparse.Namespace) -> int:
    from dataactions.emulator import Scenario, load_scenario, serve

    scenario = load_scenario(args.scenario) if args.scenario else Scenario.default()
    serve(scenario, args.host, args.port)
    return EXIT_OK


def _actions_list(args: argparse.Namespace) -> int:
    from dataactions.console import print_actions

    return print_actions(name=args.name)


def _actions_show(args: argparse.Namespace) -> int:
    from dataactions.console import print_action

    return print_action(args.action_id)


if __name__ == "__main__":
    sys.exit(main())
