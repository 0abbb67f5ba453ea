"""The command line as a user meets it: help with examples everywhere, exit codes, JSON, no colours off a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataactions.cli import main
from dataactions.emulator import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [["enrich"], ["demo"], ["emulator"], ["actions"], ["actions", "list"], ["actions", "show"], ["runs"],
            ["runs", "show"], ["serve"]]
ANY_ESCAPE = re.compile(r"\x1b\[")
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7]|38;)[0-9;]*m")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`dataactions ARGS` as a user runs it: the installed entry point, in its own process."""
    entry = Path(sys.executable).with_name("dataactions")
    command = [str(entry)] if entry.exists() else [sys.executable, "-m", "dataactions.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **(env or {})})


def help_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_lists_every_command_and_the_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("enrich", "demo", "emulator", "actions", "runs", "serve"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command
    assert "exit status:" in result.stdout and "examples:" in result.stdout
    for code in ("0", "1", "2", "3", "4"):
        assert re.search(rf"^\s+{code}\s+\S", result.stdout, re.MULTILINE)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(command, capsys)
    assert f"usage: dataactions {' '.join(command)}" in text
    assert "examples:" in text and f"dataactions {' '.join(command)}" in text.split("examples:", 1)[1]
    options = re.findall(r"^  (-[-\w, ]+?)(?:\s{2,}|\n)", text, re.MULTILINE)
    undocumented = [o for o in options if not re.search(rf"^  {re.escape(o)}\s+\S", text, re.MULTILINE)
                    and not re.search(rf"^  {re.escape(o)}\n\s+\S", text, re.MULTILINE)]
    assert not undocumented, f"options without help: {undocumented}"


@pytest.mark.parametrize("command", [["enrich"], ["demo"], ["serve"]], ids=" ".join)
def test_commands_that_run_say_their_exit_codes(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(command, capsys)
    assert "exit status:" in text and "3  the health check failed" in text


@pytest.mark.parametrize("args", [["nope"], ["enrich", "--batch-size", "many"], ["serve"],
                                  ["serve", "--action", "x", "--port", "http"], ["enrich", "--mode", "poll"]],
                         ids=" ".join)
def test_bad_arguments_exit_2_with_a_message(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_arguments_exit_2_from_the_shell() -> None:
    result = run_cli("serve", "--port", "8080")
    assert result.returncode == 2 and "--action" in result.stderr and not result.stdout


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: dataactions" in capsys.readouterr().out


def test_bad_settings_exit_2_before_serving(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GENESYS_API_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GENESYS_CLIENT_ID", "someone")
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "something")
    monkeypatch.setenv("DATAACTIONS_AUDIT_KEY", "cli-tests-audit-key-0123456789")
    status = main(["serve", "--action", "a", "--mappings-dir", str(tmp_path / "missing"), "--port", "0"])
    assert status == 2 and "configuration error" in capsys.readouterr().err
    monkeypatch.delenv("DATAACTIONS_AUDIT_KEY")
    assert main(["serve", "--action", "a", "--port", "0"]) == 2
    assert "DATAACTIONS_AUDIT_KEY" in capsys.readouterr().err


@pytest.fixture(scope="module")
def catalog() -> dict[str, str]:
    with EmulatorServer() as emulator:
        yield {"GENESYS_API_BASE_URL": emulator.base_url, "GENESYS_CLIENT_ID": "demo-client",
               "GENESYS_CLIENT_SECRET": "demo-secret", "GENESYS_REGION": ""}


def test_actions_list_as_json(catalog: dict[str, str]) -> None:
    result = run_cli("actions", "list", "--json", env=catalog)
    assert result.returncode == 0, result.stderr
    actions = json.loads(result.stdout)
    assert {"custom_-_customer-by-phone", "custom_-_verify-identity"} <= {a["id"] for a in actions}
    assert set(actions[0]) == {"id", "name", "category", "secure"}


def test_no_colours_off_a_terminal_nor_with_no_color(catalog: dict[str, str]) -> None:
    piped = run_cli("actions", "list", env=catalog | {"NO_COLOR": "", "FORCE_COLOR": ""})
    assert piped.returncode == 0 and not ANY_ESCAPE.search(piped.stdout + piped.stderr)
    lines = [line.split("\t") for line in piped.stdout.splitlines()]
    assert lines[0] == ["id", "name", "category", "secure"]
    assert ["custom_-_verify-identity", "Verify Customer Identity", "Risk", "true"] in lines



SUMMARY = {"run_id": "r1", "rows": 10, "succeeded": 8, "failed": 1, "rejected": 1, "attempts": 11, "seconds": 1.5,
           "rows_per_second": 6.7, "error_codes": {"http.500": 1}, "latency_ms": {"p50": 12, "p95": 30, "p99": 31},
           "retries": 1, "rate_limited": 0, "results_path": "out/results", "audit_path": "out/audit"}


@pytest.mark.parametrize(("env", "coloured"), [({}, False), ({"FORCE_COLOR": "1"}, True),
                                               ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)],
                         ids=["piped", "terminal", "terminal with NO_COLOR"])
def test_the_run_summary_is_coloured_only_on_a_terminal_without_no_color(
        env: dict[str, str], coloured: bool, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from dataactions.console import _print_report

    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _print_report(SUMMARY, as_json=False)
    out = capsys.readouterr().out
    assert "latency p50 / p95 / p99: 12 / 30 / 31 ms" in re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert bool(COLOUR.search(out)) is coloured
    if not env:
        assert not ANY_ESCAPE.search(out)


def test_the_run_summary_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    from dataactions.console import _print_report

    _print_report(SUMMARY, as_json=True)
    assert json.loads(capsys.readouterr().out) == SUMMARY
