"""Settings from the environment: extra OAuth clients (GENESYS_EXTRA_CLIENTS)."""

from __future__ import annotations

import json

import pytest

from dataactions.errors import ConfigurationError
from dataactions.settings import load_settings

EXTRA = [{"client_id": "second", "client_secret": "second-secret-value"},
         {"client_id": "third", "client_secret": "third-secret-value"}]


@pytest.fixture(autouse=True)
def genesys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # no .env file of the checkout
    for name in ("GENESYS_REGION", "GENESYS_LOGIN_BASE_URL", "GENESYS_EXTRA_CLIENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENESYS_API_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("GENESYS_CLIENT_ID", "first")
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "first-secret-value")


def test_without_extra_clients_there_is_one_client() -> None:
    clients = load_settings().genesys.clients
    assert [(c.client_id, c.client_secret.get_secret_value()) for c in clients] == [("first", "first-secret-value")]


def test_extra_clients_come_after_the_main_one_and_their_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESYS_EXTRA_CLIENTS", json.dumps(EXTRA))
    genesys = load_settings().genesys

    assert [c.client_id for c in genesys.clients] == ["first", "second", "third"]
    assert genesys.clients[2].client_secret.get_secret_value() == "third-secret-value"
    printed = f"{genesys!r} {genesys} {genesys.clients!r} {genesys.model_dump()}"
    assert "secret-value" not in printed


@pytest.mark.parametrize("value, complaint", [
    ('[{"client_id": "second", "client_secret": "second-secret-value"', "GENESYS_.*extra_clients"),
    ('[{"client_id": "second"}]', "GENESYS_EXTRA_CLIENTS"),
    ('[{"client_id": "first", "client_secret": "first-secret-value"}]', "once.*first"),
    ('[{"client_id": "", "client_secret": "x-secret-value"}]', "GENESYS_EXTRA_CLIENTS"),
])
def test_bad_extra_clients_are_a_configuration_error_that_shows_no_secret(
        monkeypatch: pytest.MonkeyPatch, value: str, complaint: str) -> None:
    monkeypatch.setenv("GENESYS_EXTRA_CLIENTS", value)
    with pytest.raises(ConfigurationError, match=complaint) as raised:
        load_settings()
    assert "secret-value" not in str(raised.value)
