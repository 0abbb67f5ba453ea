"""What a run persists about its inputs and answers: HMACs of inputs in the audit, never the inputs; raw answers,
except for `secure` actions, whose raw answer is never kept (results `raw_answer` is null)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dataactions.audit import input_hmac
from dataactions.emulator import EmulatorServer
from tests.flows.conftest import AUDIT_KEY
from tests.flows.support import audit, enrich, phone, results, write_customers

pytestmark = pytest.mark.usefixtures("prefect_api")

SECURE_ACTION = "custom_-_verify-identity"


def write_identities(path: Path, rows: int) -> list[dict[str, str]]:
    identities = [{"ref": f"R{n:03d}", "customerId": f"cust-sensitive-{n:04d}", "ssnLast4": f"{n:04d}"}
                  for n in range(1, rows + 1)]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["ref", "customerId", "ssnLast4"])
        writer.writeheader()
        writer.writerows(identities)
    return identities


def test_a_secure_action_keeps_no_raw_answer_and_the_audit_proves_inputs_without_holding_them(
        genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    identities = write_identities(tmp_path / "ids.csv", 9)
    report = enrich(tmp_path / "ids.csv", output_dir, "secure", action_id=SECURE_ACTION, mapping_path=None,
                    key_column="ref", batch_size=4)

    frame, trail = results(output_dir, "secure"), audit(output_dir, "secure")
    assert report["succeeded"] == 9
    assert frame.raw_answer.isna().all(), "a secure action's answer is never persisted"
    assert list(trail.index) == [i["ref"] for i in identities]
    for identity in identities:
        sent = {"customerId": identity["customerId"], "ssnLast4": identity["ssnLast4"]}
        assert trail.loc[identity["ref"]].input_hmac == input_hmac(AUDIT_KEY.encode(), sent)
    text = trail.reset_index().astype(str).to_csv() + frame.reset_index().astype(str).to_csv()
    assert not any(i["customerId"] in text for i in identities), "no raw input in results or audit"


def test_a_plain_action_keeps_its_raw_answer(genesys_env: EmulatorServer, tmp_path: Path, output_dir: Path) -> None:
    enrich(write_customers(tmp_path / "in.csv", [phone(n) for n in range(3)]), output_dir, "plain")
    frame = results(output_dir, "plain")
    assert frame.raw_answer.notna().all() and frame.raw_answer.str.startswith('{"customer"').all()
    assert not audit(output_dir, "plain").astype(str).apply(lambda c: c.str.contains(r"\+1555")).any().any()
