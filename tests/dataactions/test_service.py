"""The real-time endpoint over real HTTP: httpx → the service on a loopback port (a thread) → the emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from dataactions.audit import input_hmac
from dataactions.emulator import EmulatorServer
from dataactions.emulator.generators import customer_by_phone
from dataactions.errors import ConfigurationError
from dataactions.service import EnrichService, ServiceConfig, ServiceServer
from dataactions.settings import Settings
from tests.dataactions.conftest import CUSTOMER_ACTION, ORDER_ACTION, collected, in_memory_metrics, phone, points

MAPPING = "data/mappings/customer_by_phone.yaml"
SECURE_ACTION = "custom_-_verify-identity"
AUDIT_KEY = "service-tests-audit-key-0123456789"

Start = Callable[..., tuple[httpx.Client, EnrichService]]
_servers: dict[int, ServiceServer] = {}


def stop(service: EnrichService) -> None:
    """Stop the server of `service` (as Ctrl-C would: in-flight requests finish, the audit buffer is written)."""
    _servers.pop(id(service)).stop()


@pytest.fixture
def start(emulator: EmulatorServer, make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Start]:
    """Start a service (keyword arguments: ServiceConfig fields, or pipeline settings) and an httpx client to it."""
    running: list[tuple[ServiceServer, httpx.Client]] = []
    config_fields = set(ServiceConfig.__dataclass_fields__)

    def start_service(*, client_secret: str = "demo-secret", **options: Any) -> tuple[httpx.Client, EnrichService]:
        config = {"actions": (CUSTOMER_ACTION,), "mapping_path": MAPPING, "output_dir": str(tmp_path / "out")}
        config |= {k: v for k, v in options.items() if k in config_fields}
        pipeline = {k: v for k, v in options.items() if k not in config_fields}
        settings = make_settings(client_secret=client_secret, audit_key=AUDIT_KEY,
                                 **{"backoff_base_seconds": 0.01} | pipeline)
        metrics, reader = in_memory_metrics()
        service = EnrichService(ServiceConfig(**config), settings, metrics)
        service.metrics_reader = reader  # type: ignore[attr-defined]
        server = _servers[id(service)] = ServiceServer(service).start()
        client = httpx.Client(base_url=server.base_url, timeout=30)
        running.append((server, client))
        return client, service

    yield start_service
    for server, client in running:
        client.close()
        server.stop()
    _servers.clear()


def post(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/enrich", content=content, headers={"Content-Type": "application/json", **headers})


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_a_row_comes_back_mapped_with_its_raw_answer(start: Start, emulator: EmulatorServer) -> None:
    client, _ = start()
    inputs = {"phoneNumber": phone(1)}

    response = post(client, {"action_id": CUSTOMER_ACTION, "input": inputs}, **{"X-Request-Id": "req-1"})

    assert response.status_code == 200, response.text
    body = response.json()
    expected = customer_by_phone(inputs)
    assert set(body) == {"status", "row", "raw", "attempts", "correlation_id"}
    assert body["status"] == "succeeded" and body["attempts"] == 1 and body["correlation_id"]
    assert body["raw"] == expected
    row = body["row"]
    assert (row["customer_id"], row["tier"], row["vip"]) == (expected["customer"]["id"],
                                                             expected["customer"]["tier"], expected["customer"]["vip"])
    assert row["lifetime_value"] == pytest.approx(expected["customer"]["lifetimeValue"])
    assert row["customer_since"] == expected["customer"]["since"]
    assert json.loads(row["account_ids"]) == [a["id"] for a in expected["accounts"]]
    assert response.headers["x-request-id"] == "req-1"
    assert emulator.input_count(CUSTOMER_ACTION, inputs) == 1


def test_named_mappings_secure_actions_and_a_default_action(start: Start, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "verified.yaml").write_text('columns:\n  verified: {path: "$.verified", type: boolean}\n')
    (mappings / "status.yml").write_text('columns:\n  order_status: "$.status"\n')
    client, _ = start(actions=(SECURE_ACTION, ORDER_ACTION), mapping_path=None, mappings_dir=str(mappings))

    secure = post(client, {"action_id": SECURE_ACTION, "input": {"customerId": "C1", "ssnLast4": "1234"},
                           "mapping": "verified"})
    order = post(client, {"action_id": ORDER_ACTION, "input": {"orderId": "O-1"}, "mapping": "status"})
    plain = post(client, {"action_id": ORDER_ACTION, "input": {"orderId": "O-1"}})
    assert secure.status_code == order.status_code == plain.status_code == 200
    assert "raw" not in secure.json() and isinstance(secure.json()["row"]["verified"], bool)
    assert set(order.json()["row"]) == {"order_status"} and order.json()["raw"]["status"]
    assert plain.json()["row"] == {}

    no_action = post(client, {"input": {"orderId": "O-1"}})
    assert no_action.status_code == 400 and error_of(no_action)["field"] == "action_id"

    single, _ = start()
    assert post(single, {"input": {"phoneNumber": phone(2)}}).status_code == 200


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"action_id": CUSTOMER_ACTION, "input": {}}, "phoneNumber", "is required"),
    ({"action_id": CUSTOMER_ACTION, "input": {"phoneNumber": "call me maybe"}}, "phoneNumber", "must match"),
    ({"action_id": CUSTOMER_ACTION, "input": {"phoneNumber": {"nested": 1}}}, "phoneNumber", "flat value"),
    ({"action_id": CUSTOMER_ACTION, "input": ["+15550000001"]}, "input", "JSON object"),
    ({"action_id": CUSTOMER_ACTION, "inputs": {"phoneNumber": phone(1)}}, "inputs", "unknown field"),
    ({"action_id": 7, "input": {}}, "action_id", "must be a string"),
    ({"action_id": CUSTOMER_ACTION, "input": {}, "mapping": 3}, "mapping", "name of a mapping"),
])
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_sent(
        start: Start, emulator: EmulatorServer, body: dict[str, Any], field: str, says: str) -> None:
    client, _ = start()
    response = post(client, body)
    error = error_of(response)
    assert response.status_code == 400
    assert error["field"] == field and says in error["message"]
    assert "call me maybe" not in error["message"]
    assert emulator.stats()["executions"].get(CUSTOMER_ACTION, 0) == 0


def test_a_body_that_is_not_json_or_too_large(start: Start) -> None:
    client, _ = start()
    broken = post(client, b'{"action_id": ')
    assert broken.status_code == 400 and error_of(broken)["code"] == "invalid_json"
    assert post(client, b"[1, 2]").status_code == 400
    huge = post(client, b'{"input": {"x": "' + b"a" * (1 << 20) + b'"}}')
    assert huge.status_code == 413 and error_of(huge)["code"] == "payload_too_large"
    assert client.get("/enrich").status_code == 405 and error_of(client.get("/enrich"))["code"] == "method_not_allowed"
    assert client.get("/nope").status_code == 404 and error_of(client.get("/nope"))["code"] == "not_found"


def test_unknown_actions_and_mappings_are_404(start: Start) -> None:
    client, _ = start(actions=(CUSTOMER_ACTION, "custom_-_not-in-genesys"))
    not_served = post(client, {"action_id": ORDER_ACTION, "input": {"orderId": "1"}})
    not_in_genesys = post(client, {"action_id": "custom_-_not-in-genesys", "input": {"x": "1"}})
    no_mapping = post(client, {"action_id": CUSTOMER_ACTION, "input": {"phoneNumber": phone(1)}, "mapping": "nope"})
    traversal = post(client, {"action_id": CUSTOMER_ACTION, "input": {"phoneNumber": phone(1)},
                              "mapping": "../customer_by_phone"})
    assert [r.status_code for r in (not_served, not_in_genesys, no_mapping, traversal)] == [404] * 4
    assert [error_of(r)["code"] for r in (not_served, not_in_genesys, no_mapping)] == [
        "unknown_action", "unknown_action", "unknown_mapping"]
    assert error_of(not_in_genesys)["field"] == "action_id" and error_of(no_mapping)["field"] == "mapping"


def test_a_spent_rate_budget_is_a_429_with_retry_after_not_a_queue(start: Start, emulator: EmulatorServer) -> None:
    client, _ = start(rate_per_minute=120, max_wait_seconds=0.2)  # one request every 0.5 s
    time.sleep(0.6)  # the contract, fetched at start, took the first slot
    first = post(client, {"input": {"phoneNumber": phone(1)}})
    started = time.perf_counter()
    second = post(client, {"input": {"phoneNumber": phone(2)}})
    assert first.status_code == 200, first.text
    assert second.status_code == 429 and time.perf_counter() - started < 0.4
    assert error_of(second)["code"] == "rate_limited" and second.headers["retry-after"] == "1"
    assert emulator.input_count(CUSTOMER_ACTION, {"phoneNumber": phone(2)}) == 0


def test_a_long_retry_after_from_genesys_is_passed_on(start: Start, emulator: EmulatorServer) -> None:
    emulator.configure(faults=[{"kind": "status", "status": 429, "retry_after": 30,
                                "match": {"phoneNumber": phone(3)}}])
    client, _ = start(max_wait_seconds=0.5)
    started = time.perf_counter()
    response = post(client, {"input": {"phoneNumber": phone(3)}})
    assert response.status_code == 429 and time.perf_counter() - started < 5
    assert 25 <= int(response.headers["retry-after"]) <= 30
    assert error_of(response)["code"] == "rate_limited"


def test_remote_failures_are_502_and_timeouts_504(start: Start, emulator: EmulatorServer) -> None:
    emulator.configure(faults=[
        {"kind": "status", "status": 500, "match": {"phoneNumber": phone(4)}},
        {"kind": "status", "status": 504, "match": {"phoneNumber": phone(5)}},
        {"kind": "status", "status": 400, "match": {"phoneNumber": phone(6)}},
    ])
    client, _ = start(max_attempts=2)

    remote = post(client, {"input": {"phoneNumber": phone(4)}})
    gateway = post(client, {"input": {"phoneNumber": phone(5)}})
    refused = post(client, {"input": {"phoneNumber": phone(6)}})

    assert (remote.status_code, error_of(remote)["code"]) == (502, "remote_failure")
    assert error_of(remote)["correlation_id"] and phone(4) not in error_of(remote)["message"]
    assert (gateway.status_code, error_of(gateway)["code"]) == (504, "upstream_timeout")
    assert (refused.status_code, error_of(refused)["code"]) == (400, "rejected_by_action")

    emulator.configure(latency=3000)
    slow_client, _ = start(timeout_seconds=0.3)
    slow = post(slow_client, {"input": {"phoneNumber": phone(7)}})
    assert (slow.status_code, error_of(slow)["code"]) == (504, "timeout")


def test_a_remote_that_looks_down_opens_the_breaker_for_a_cool_down(start: Start, emulator: EmulatorServer) -> None:
    emulator.configure(faults=[{"kind": "status", "status": 503}])
    client, _ = start(breaker_window=2, breaker_failure_ratio=1.0, max_attempts=1, breaker_cooldown_seconds=60)
    codes = [post(client, {"input": {"phoneNumber": phone(n)}}).status_code for n in range(3)]
    paused = post(client, {"input": {"phoneNumber": phone(9)}})
    assert codes[:2] == [502, 502] and paused.status_code == 503
    assert error_of(paused)["code"] == "circuit_open" and int(paused.headers["retry-after"]) >= 1
    assert client.get("/healthz").status_code == 503


def test_healthz_says_whether_a_token_can_be_had(start: Start) -> None:
    healthy, _ = start()
    assert healthy.get("/healthz").status_code == 200 and healthy.get("/healthz").json()["status"] == "ok"
    refused, _ = start(client_secret="wrong-secret")
    response = refused.get("/healthz")
    assert response.status_code == 503 and response.json()["error"]["code"] == "login_failed"
    assert "wrong-secret" not in response.text


def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "out" / "audit" / f"run_id=serve-{datetime.now(UTC).date().isoformat()}"


def test_requests_land_in_the_audit_and_the_metrics(start: Start, emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.configure(faults=[{"kind": "status", "status": 500, "match": {"phoneNumber": phone(4)}}])
    client, service = start(audit_rows=2, audit_seconds=60)
    bodies = [{"phoneNumber": phone(1)}, {"phoneNumber": phone(2)}, {"phoneNumber": "bad"}, {"phoneNumber": phone(4)},
              {"phoneNumber": phone(5)}]
    ids = [post(client, {"input": body}).headers["x-request-id"] for body in bodies]
    assert post(client, {"action_id": ORDER_ACTION, "input": {}}).status_code == 404  # not an audit row
    deadline = time.monotonic() + 5
    while service.audit.parts_written < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(list(audit_dir(tmp_path).glob("part-*.parquet"))) == 2  # every 2 rows, while serving

    stop(service)  # the fifth row is written at shutdown

    frame = pd.read_parquet(audit_dir(tmp_path))
    assert sorted(frame.row_key) == sorted(ids)
    by_key = frame.set_index("row_key")
    assert by_key.loc[ids[0], "input_hmac"] == input_hmac(AUDIT_KEY.encode(), bodies[0])
    assert list(by_key.loc[ids, "status"]) == ["succeeded", "succeeded", "rejected", "failed", "succeeded"]
    assert by_key.loc[ids[3], "correlation_id"] and by_key.loc[ids[3], "http_status"] == 500
    assert by_key.loc[ids[0], "duration_ms"] > 0 and by_key.loc[ids[0], "action_id"] == CUSTOMER_ACTION
    assert not frame.astype(str).apply(lambda column: column.str.contains(phone(1), regex=False)).any().any()

    reader = service.metrics_reader  # type: ignore[attr-defined]
    rows = {dict(k)["dataactions.outcome"]: p.value for k, p in points(collected(reader)["dataactions.rows"]).items()}
    assert rows == {"succeeded": 3, "failed": 1, "rejected": 1}
    served = points(collected(reader)["http.server.request.duration"])
    assert sum(p.count for k, p in served.items() if dict(k)["http.route"] == "/enrich") == 6
    contract_reads = [p.count for k, p in points(collected(reader)["http.client.request.duration"]).items()
                      if dict(k)["url.template"] == "/api/v2/integrations/actions/{actionId}"]
    assert contract_reads == [1]  # the contract was fetched once and kept


def test_the_last_audit_rows_are_written_at_shutdown(start: Start, tmp_path: Path) -> None:
    client, service = start(audit_rows=1000, audit_seconds=60)
    request_id = post(client, {"input": {"phoneNumber": phone(1)}}).headers["x-request-id"]
    assert not list(audit_dir(tmp_path).glob("part-*.parquet"))

    stop(service)

    assert list(pd.read_parquet(audit_dir(tmp_path)).row_key) == [request_id]


def test_bad_service_configuration_fails_before_serving(make_settings: Callable[..., Settings],
                                                        tmp_path: Path) -> None:
    settings = make_settings(audit_key=AUDIT_KEY)
    with pytest.raises(ConfigurationError, match="does not exist"):
        EnrichService(ServiceConfig(actions=(CUSTOMER_ACTION,), mappings_dir=str(tmp_path / "none")), settings)
    (tmp_path / "bad.yaml").write_text("columns: {x: {path: 'no dollar'}}\n")
    with pytest.raises(ConfigurationError, match="JSONPath"):
        EnrichService(ServiceConfig(actions=(CUSTOMER_ACTION,), mapping_path=str(tmp_path / "bad.yaml")), settings)
    with pytest.raises(ConfigurationError, match="--action"):
        ServiceConfig(actions=())
