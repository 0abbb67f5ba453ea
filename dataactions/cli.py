"""The `dataactions` command line.

exit status:
  0  the command completed (for a run: failed rows are data, not a crash)
  1  anything else went wrong (the message says what)
  2  bad arguments or settings (nothing was sent)
  3  the health check failed (nothing was sent)
  4  the run stopped itself (circuit breaker or --max-failed-rows; committed batches are kept,
     rerun with the same --run-id to resume)
  130 interrupted (Ctrl-C); committed batches are kept

Settings come from the environment (or a .env file): GENESYS_* says where the org is and how to log in,
DATAACTIONS_* holds the knobs (see README). Colours only on a terminal, and never when NO_COLOR is set.

examples:
  dataactions demo                                   # the whole job on a local emulator
  dataactions enrich customers.csv --action ID --mapping mapping.yaml --run-id nightly-2026-12-04
  dataactions serve --action ID --mapping mapping.yaml
  dataactions COMMAND --help                         # each command's options and examples
"""

from __future__ import annotations

import argparse
import json
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

_EXIT_STATUS = __doc__.split("\n\n")[1]

_EXAMPLES_ENRICH = """examples:
  dataactions enrich data/sample/customers.csv --action custom_-_customer-by-phone \\
      --mapping data/mappings/customer_by_phone.yaml --output data/output --run-id nightly-2026-12-04
  dataactions enrich rows.jsonl --mode workflow --flow-id wf-enrich-customer --run-id wf-1
  dataactions enrich rows.parquet --action ID --run-id nightly-2026-12-04      # rerun: resumes
  dataactions runs show nightly-2026-12-04                  # committed, failed and pending batches
  dataactions enrich --retry-failed nightly-2026-12-04      # the failed rows again, as nightly-2026-12-04-retry-1
  dataactions enrich big.csv --action ID --runner dask --dask-address tcp://10.0.0.5:8786  # on a Dask cluster
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
    _add_runs(commands)
    _add_serve(commands)
    return parser


def _command(commands: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int],
             epilog: str | None = None, *, exit_status: bool = False) -> argparse.ArgumentParser:
    if exit_status:
        epilog = f"{epilog or ''}\n{_EXIT_STATUS}".strip("\n")
    sub = commands.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(handler=handler)
    return sub


def _add_enrich(commands: Any) -> None:
    sub = _command(commands, "enrich", "Enrich every row of INPUT (CSV, Parquet or JSONL) with a data action.",
                   _enrich, _EXAMPLES_ENRICH, exit_status=True)
    sub.add_argument("input", nargs="?", help="input file: .csv, .parquet or .jsonl (not with --retry-failed)")
    sub.add_argument("--action", dest="action_id", help="data action id (execute mode)")
    sub.add_argument("--mapping", dest="mapping_path", help="YAML mapping: output column -> JSONPath + type")
    sub.add_argument("--output", dest="output_dir", help="output directory (default: DATAACTIONS_OUTPUT_DIR)")
    sub.add_argument("--run-id", help="name of the run; rerunning the same id resumes it (default: new id)")
    sub.add_argument("--mode", choices=["execute", "workflow"], default="execute",
                     help="execute: run a data action per row (default); workflow: launch an Architect workflow "
                          "per row and poll it")
    sub.add_argument("--flow-id", help="Architect workflow id (workflow mode)")
    sub.add_argument("--batch-size", type=int, help="rows per Prefect task (default: DATAACTIONS_BATCH_SIZE, 500)")
    sub.add_argument("--concurrency", type=int, help="requests in flight at most")
    sub.add_argument("--rate-per-minute", type=float, help="requests per minute per token (0: no client limit)")
    sub.add_argument("--key-column", help="input column that names each row (default: the row number)")
    sub.add_argument("--flatten", action="store_true", help="ask Genesys for Architect-flattened answers")
    sub.add_argument("--max-failed-rows", type=float,
                     help="stop cleanly past this many failed rows (or this share, when below 1)")
    sub.add_argument("--runner", choices=["local", "dask"], default="local",
                     help="where batches run: this process (default) or a Dask cluster (needs a Prefect server; "
                          "see README, Scaling out)")
    sub.add_argument("--dask-address", help="scheduler of the Dask cluster, tcp://HOST:PORT (default: a local one)")
    sub.add_argument("--batches-in-flight", type=int,
                     help="batch tasks running at once (default 4); with --runner dask each gets an equal share of "
                          "--rate-per-minute and --concurrency")
    sub.add_argument("--retry-failed", dest="retry_failed_of", metavar="RUN_ID",
                     help="send again only the rows whose latest outcome in RUN_ID is 'failed', as the run "
                          "RUN_ID-retry-N (input, action and mapping are RUN_ID's; --run-id resumes a retry)")
    sub.add_argument("--json", action="store_true", help="print the summary as JSON (on stdout; progress goes to "
                                                         "stderr)")


def _add_demo(commands: Any) -> None:
    sub = _command(commands, "demo", "Run the whole job on the bundled emulator and the sample input.", _demo,
                   """examples:
  dataactions demo                        # 5,000 sample rows through a local emulator; prints where they landed
  dataactions demo --json | jq .rows_per_second
""", exit_status=True)
    sub.add_argument("--output", dest="output_dir", default=str(REPO_DATA / "output"),
                     help="output directory (default: data/output)")
    sub.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_emulator(commands: Any) -> None:
    sub = _command(commands, "emulator", "Serve the local Genesys Cloud emulator.", _emulator, """examples:
  dataactions emulator                                   # http://127.0.0.1:8765, the packaged scenario
  dataactions emulator --port 0 --scenario data/emulator/demo.yaml   # a free port (printed)
  GENESYS_API_BASE_URL=http://127.0.0.1:8765 GENESYS_CLIENT_ID=demo-client GENESYS_CLIENT_SECRET=demo-secret \\
      dataactions actions list                           # then point the other commands at it
""")
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sub.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: a free one)")
    sub.add_argument("--scenario", help="scenario YAML/JSON (default: the packaged default scenario)")


def _add_actions(commands: Any) -> None:
    sub = _command(commands, "actions", "Read the data action catalog.", lambda a: _usage(sub), """examples:
  dataactions actions list
  dataactions actions list --name customer --json
  dataactions actions show custom_-_customer-by-phone
""")
    verbs = sub.add_subparsers(title="verbs", metavar="VERB")
    listing = _command(verbs, "list", "List published actions.", _actions_list, """examples:
  dataactions actions list
  dataactions actions list --name "customer" --json | jq -r '.[].id'
""")
    listing.add_argument("--name", help="only actions whose name contains this (any case)")
    listing.add_argument("--json", action="store_true", help="print the actions as JSON")
    show = _command(verbs, "show", "Show one action with its contract (JSON).", _actions_show, """examples:
  dataactions actions show custom_-_customer-by-phone
  dataactions actions show custom_-_customer-by-phone | jq .contract.input.inputSchema
""")
    show.add_argument("action_id", metavar="ACTION_ID", help="the action's id")


def _add_serve(commands: Any) -> None:
    sub = _command(commands, "serve", "Serve the real-time endpoint: POST /enrich enriches one row, GET /healthz.",
                   _serve, """examples:
  dataactions serve --action custom_-_customer-by-phone --mapping data/mappings/customer_by_phone.yaml
  dataactions serve --port 9000 --action ID1 --action ID2 --mappings-dir data/mappings
  curl -s localhost:8080/enrich -H 'Content-Type: application/json' \\
      -d '{"action_id": "custom_-_customer-by-phone", "input": {"phoneNumber": "+15550100001"}}'

Answers and status codes: README, "Real-time endpoint". Audit rows land under
OUTPUT/audit/run_id=serve-<UTC date>/. Ctrl-C or SIGTERM stops it after in-flight requests.
""", exit_status=True)
    sub.add_argument("--action", dest="actions", action="append", required=True, metavar="ID",
                     help="a data action id to serve (repeat for more; a request may omit action_id when one is "
                          "served)")
    sub.add_argument("--mapping", dest="mapping_path", metavar="FILE",
                     help="YAML mapping used when a request names none (default: no mapped columns)")
    sub.add_argument("--mappings-dir", metavar="DIR",
                     help="directory of YAML mappings a request may name: \"mapping\": \"NAME\" is DIR/NAME.yaml")
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sub.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0: a free one, printed)")
    sub.add_argument("--output", dest="output_dir", help="where audit/ goes (default: DATAACTIONS_OUTPUT_DIR)")
    sub.add_argument("--max-wait", dest="max_wait_seconds", type=float, default=1.0, metavar="SECONDS",
                     help="longest a request may wait for the rate limit before it is answered 429 (default: 1)")
    sub.add_argument("--timeout", dest="timeout_seconds", type=float, default=30.0, metavar="SECONDS",
                     help="answer 504 when a request has no outcome within this (default: 30)")


def _add_runs(commands: Any) -> None:
    sub = _command(commands, "runs", "Inspect runs in an output directory.", lambda a: _usage(sub), """examples:
  dataactions runs show nightly-2026-12-04
""")
    verbs = sub.add_subparsers(title="verbs", metavar="VERB")
    show = _command(verbs, "show", "What a run committed, what failed, what is pending (to resume or retry).",
                    _runs_show, """examples:
  dataactions runs show nightly-2026-12-04
  dataactions runs show nightly-2026-12-04 --output /data/enrich --limit 10 --json
""")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--output", dest="output_dir", help="output directory (default: DATAACTIONS_OUTPUT_DIR)")
    show.add_argument("--input", dest="input_path", help="the run's input file (default: from its manifest)")
    show.add_argument("--batch-size", type=int, help="the run's batch size (default: from its manifest)")
    show.add_argument("--key-column", help="the run's key column (default: from its manifest)")
    show.add_argument("--limit", type=int, default=50, help="failed rows to list (default: 50)")
    show.add_argument("--json", action="store_true", help="print the status as JSON")


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


def _runs_show(args: argparse.Namespace) -> int:
    from dataactions.runs import show_run
    from dataactions.settings import PipelineSettings

    output_dir = args.output_dir or str(PipelineSettings().output_dir)
    status = show_run(output_dir, args.run_id, input_path=args.input_path, batch_size=args.batch_size,
                      key_column=args.key_column, limit=args.limit)
    print(json.dumps(status.as_dict(), indent=2, default=str) if args.json else status.render())
    return EXIT_OK


def _actions_list(args: argparse.Namespace) -> int:
    from dataactions.console import print_actions

    if args.json:
        return print_actions(name=args.name, as_json=True)
    return print_actions(name=args.name)


def _serve(args: argparse.Namespace) -> int:
    from dataactions.service import EnrichService, ServiceConfig, serve

    config = ServiceConfig(actions=tuple(args.actions), mapping_path=args.mapping_path, mappings_dir=args.mappings_dir,
                           output_dir=args.output_dir, max_wait_seconds=args.max_wait_seconds,
                           timeout_seconds=args.timeout_seconds)
    serve(EnrichService(config), args.host, args.port)  # bad settings or mappings fail here, before listening
    return EXIT_OK


def _actions_show(args: argparse.Namespace) -> int:
    from dataactions.console import print_action

    return print_action(args.action_id)


if __name__ == "__main__":
    sys.exit(main())
