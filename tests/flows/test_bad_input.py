"""Bad input, bad settings, bad mappings.

A bad row is rejected (never sent) with a message that names the row, the field and what was expected, never the
value, and the run goes on with the other rows. Bad settings and bad mapping files stop the run before any row is
sent: the command line exits 2 with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dataactions import cli
from dataactions.emulator import EmulatorServer, Scenario
from tests.flows.conftest import CUSTOMER_ACTION
from tests.flows.support import MAPPING, enrich, executions, phone, results, sent

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.timeout(180)]

ORDER_ACTION = "custom_-_order-status"
TYPED_ACTION = "custom_-_typed"
_DEFAULT = Scenario.default()
_TYPED = {
    "id": TYPED_ACTION, "name": "Typed inputs", "output": "echo", "success_schema": {"type": "object"},
    "input_schema": {"type": "object", "required": ["ref", "amount"], "properties": {
        "ref": {"type": "string"}, "amount": {"type": "integer", "minimum": 1}, "ratio": {"type": "number"},
        "active": {"type": "boolean"}}},
}


@pytest.fixture(autouse=True)
def catalog_with_typed_action(genesys_env: EmulatorServer) -> Iterator[EmulatorServer]:
    actions = [a.model_dump(mode="json") for a in _DEFAULT.actions]
    genesys_env.configure(actions=[*actions, _TYPED])
    yield genesys_env
    genesys_env.configure(actions=actions)


def csv_bytes(*lines: bytes | str) -> bytes:
    return b"".join((line.encode() if isinstance(line, str) else line) + b"\n" for line in lines)


def jsonl(*rows: dict[str, Any] | str) -> bytes:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows).encode()


HEADER = "customer_ref,phoneNumber,segment"


@dataclass(frozen=True)
class Case:
    """One bad row among good ones: the file, the action, the rejected row's key and what its message says."""

    name: str
    suffix: str
    content: bytes
    key: str
    says: tuple[str, ...]
    action: str = CUSTOMER_ACTION
    good: int = 2
    never: str | None = None  # a raw value of the bad row that must appear in no message


CASES = [
    Case("contract violation", ".csv", csv_bytes(HEADER, f"C0001,{phone(1)},a", "C0002,12ab-secret,b",
                                                 f"C0003,{phone(3)},c"),
         "C0002", ("row C0002", "field 'phoneNumber'", "must match pattern"), never="12ab-secret"),
    Case("missing column", ".jsonl", jsonl({"customer_ref": "C0001", "phoneNumber": phone(1)},
                                           {"customer_ref": "C0002", "segment": "x"},
                                           {"customer_ref": "C0003", "phoneNumber": phone(3)}),
         "C0002", ("row C0002", "field 'phoneNumber'", "is required")),
    Case("wrong type: text for an integer", ".jsonl",
         jsonl({"customer_ref": "C0001", "ref": "a", "amount": 3},
               {"customer_ref": "C0002", "ref": "b", "amount": "three-secret"},
               {"customer_ref": "C0003", "ref": "c", "amount": "7"}),
         "C0002", ("row C0002", "field 'amount'", "must be an integer"), action=TYPED_ACTION, never="three-secret"),
    Case("wrong type: an object for a flat value", ".jsonl",
         jsonl({"customer_ref": "C0001", "ref": "a", "amount": 3},
               {"customer_ref": "C0002", "ref": {"nested": "secret-obj"}, "amount": 2},
               {"customer_ref": "C0003", "ref": "c", "amount": 1}),
         "C0002", ("row C0002", "field 'ref'", "must be a flat value"), action=TYPED_ACTION, never="secret-obj"),
    Case("wrong type: not a boolean", ".jsonl",
         jsonl({"customer_ref": "C0001", "ref": "a", "amount": 3, "active": True},
               {"customer_ref": "C0002", "ref": "b", "amount": 2, "active": "maybe"},
               {"customer_ref": "C0003", "ref": "c", "amount": 1, "active": "no"}),
         "C0002", ("row C0002", "field 'active'", "must be a boolean"), action=TYPED_ACTION),
    Case("below the contract's minimum", ".jsonl",
         jsonl({"customer_ref": "C0001", "ref": "a", "amount": 3},
               {"customer_ref": "C0002", "ref": "b", "amount": 0},
               {"customer_ref": "C0003", "ref": "c", "amount": 1}),
         "C0002", ("row C0002", "field 'amount'", "must be bigger than or equal to 1"), action=TYPED_ACTION),
    Case("non-UTF-8 bytes", ".csv", csv_bytes(HEADER, f"C0001,{phone(1)},a", f"C0002,{phone(2)},caf\xe9".encode(
        "latin-1"), f"C0003,{phone(3)},c"), "C0002", ("row C0002", "field 'segment'", "is not valid UTF-8 text")),
    Case("ragged CSV line", ".csv", csv_bytes(HEADER, f"C0001,{phone(1)},a", f"C0002,{phone(2)},b,extra",
                                              f"C0003,{phone(3)},c"),
         "#2", ("row #2", "has 4 fields; expected 3")),
    Case("duplicate key", ".csv", csv_bytes(HEADER, f"C0001,{phone(1)},a", f"C0001,{phone(2)},b",
                                            f"C0003,{phone(3)},c"),
         "C0001", ("row C0001", "field 'customer_ref'", "duplicate key: same key as row 1")),
    Case("oversize input", ".csv", csv_bytes("customer_ref,orderId", "C0001,ORD-1", "C0002," + "X" * 600_000,
                                             "C0003,ORD-3"),
         "C0002", ("row C0002", "field 'orderId'", "makes the JSON body 600,014 bytes",
                   "Genesys accepts at most 512,000 bytes per request"), action=ORDER_ACTION),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_row_is_rejected_with_row_field_and_expectation_and_the_run_goes_on(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path, case: Case) -> None:
    source = tmp_path / f"in{case.suffix}"
    source.write_bytes(case.content)
    mapping = str(MAPPING) if case.action == CUSTOMER_ACTION else None
    report = enrich(source, output_dir, "bad-row", action_id=case.action, mapping_path=mapping)

    frame = results(output_dir, "bad-row")
    bad = frame[frame.status == "rejected"]
    assert len(bad) == 1 and bad.index[0] == case.key, bad
    message = bad.iloc[0].error_message
    for expected in case.says:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert case.never is None or case.never not in message
    assert (frame.status == "succeeded").sum() == case.good == report["succeeded"]
    assert report["rejected"] == 1 and report["rows"] == case.good + 1
    assert executions(genesys_env, case.action) == case.good, "the rejected row was never sent"


def test_extra_columns_are_not_sent(genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes("customer_ref,phoneNumber,ssn,notes", f"C0001,{phone(1)},123-45-6789,vip"))
    report = enrich(source, output_dir, "extra")

    assert report["succeeded"] == 1
    assert sent(genesys_env, {"phoneNumber": phone(1)}) == 1, "the body held phoneNumber only"


@pytest.mark.parametrize("content", [b"", csv_bytes(HEADER), b"\n\n"], ids=["empty", "header only", "blank lines"])
def test_an_input_without_rows_completes_with_nothing_sent(genesys_env: EmulatorServer, tmp_path: Path,
                                                          output_dir: Path, content: bytes) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    report = enrich(source, output_dir, "empty")

    assert (report["rows"], report["batches"]) == (0, 0)
    assert executions(genesys_env) == 0


def enrich_args(source: Path, output_dir: Path, *more: str) -> list[str]:
    return ["enrich", str(source), "--action", CUSTOMER_ACTION, "--output", str(output_dir), "--run-id", "refused",
            "--rate-per-minute", "0", *more]


SETTINGS: list[tuple[str, Callable[[pytest.MonkeyPatch], None], str]] = [
    ("batch size 0", lambda mp: mp.setenv("DATAACTIONS_BATCH_SIZE", "0"),
     "DATAACTIONS_BATCH_SIZE: Input should be greater than or equal to 1"),
    ("no client secret", lambda mp: mp.delenv("GENESYS_CLIENT_SECRET"), "GENESYS_CLIENT_SECRET must be set"),
    ("no audit key", lambda mp: mp.delenv("DATAACTIONS_AUDIT_KEY"), "DATAACTIONS_AUDIT_KEY must be set"),
    ("plain http to a remote host", lambda mp: mp.setenv("GENESYS_API_BASE_URL", "http://api.example.com"),
     "uses plain http for a non-loopback host 'api.example.com'; use https"),
    ("unknown region", lambda mp: (mp.delenv("GENESYS_API_BASE_URL"), mp.setenv("GENESYS_REGION", "moon_1")),
     "unknown region 'moon_1'"),
    ("retry statuses not HTTP errors", lambda mp: mp.setenv("DATAACTIONS_RETRY_STATUSES", "[200]"),
     "retry statuses must be 4xx or 5xx"),
]


@pytest.mark.parametrize(("name", "setting", "says"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_bad_settings_exit_2_before_any_row_is_sent(genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], name: str,
                                                    setting: Callable[[pytest.MonkeyPatch], None], says: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(HEADER, f"C0001,{phone(1)},a"))
    setting(monkeypatch)

    assert cli.main(enrich_args(source, output_dir)) == 2
    error = capsys.readouterr().err
    assert error.startswith("configuration error:") and says in error, error
    assert sum(genesys_env.stats(include_inputs=False)["executions"].values()) == 0


MAPPINGS = [
    ("unknown type", "columns:\n  tier: {path: '$.customer.tier', type: text}\n",
     "column 'tier': unknown type 'text'; use one of string, integer, number, boolean, timestamp"),
    ("invalid JSONPath", "columns:\n  tier: {path: '$.customer[', type: string}\n",
     "column 'tier': '$.customer[' is not valid JSONPath"),
    ("path without $", "columns:\n  tier: customer.tier\n", "'path' must be a JSONPath starting with '$'"),
    ("not YAML", "columns: [\n", "is not valid YAML"),
    ("bad default", "columns:\n  n: {path: '$.n', type: integer, default: many}\n",
     "column 'n': the default does not fit type integer"),
]


@pytest.mark.parametrize(("name", "text", "says"), MAPPINGS, ids=[m[0] for m in MAPPINGS])
def test_a_bad_mapping_file_exits_2_before_any_row_is_sent(genesys_env: EmulatorServer, tmp_path: Path,
                                                           output_dir: Path, capsys: pytest.CaptureFixture[str],
                                                           name: str, text: str, says: str) -> None:
    source, mapping = tmp_path / "in.csv", tmp_path / "mapping.yaml"
    source.write_bytes(csv_bytes(HEADER, f"C0001,{phone(1)},a"))
    mapping.write_text(text)

    assert cli.main(enrich_args(source, output_dir, "--mapping", str(mapping))) == 2
    error = capsys.readouterr().err
    assert error.startswith("configuration error:") and says in error and str(mapping) in error, error
    assert sum(genesys_env.stats(include_inputs=False)["executions"].values()) == 0
    assert not (output_dir / "results").exists()


def test_a_missing_key_column_exits_2_before_any_row_is_sent(genesys_env: EmulatorServer, tmp_path: Path,
                                                             output_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(HEADER, f"C0001,{phone(1)},a"))

    assert cli.main(enrich_args(source, output_dir, "--key-column", "customer_id")) == 2
    assert "key column 'customer_id' is not in" in capsys.readouterr().err
    assert sum(genesys_env.stats(include_inputs=False)["executions"].values()) == 0
