"""Transport security: TLS is verified (no switch turns that off), plain http is refused unless the host is loopback.

The HTTPS test serves the emulator over TLS with a certificate from a throw-away CA (trustme): the client refuses
it as an unknown issuer until SSL_CERT_FILE names that CA, as a corporate CA would be added.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import uvicorn

from dataactions.client import GenesysClient
from dataactions.emulator import Scenario
from dataactions.emulator.app import create_app
from dataactions.errors import ConfigurationError, HealthCheckFailed
from dataactions.settings import load_settings
from dataactions.transport import build_transport

ACTION = "custom_-_customer-by-phone"


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
def test_every_transport_verifies_certificates_and_host_names(kind: str) -> None:
    transport = build_transport(4, kind=kind)  # type: ignore[arg-type]
    context = transport.ssl_context if kind == "aiohttp" else transport._pool._ssl_context  # type: ignore[attr-defined]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.fixture
def https_emulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The emulator over HTTPS on a loopback port, with a certificate issued by a CA nobody trusts."""
    ca = trustme.CA()
    server_pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    config = uvicorn.Config(create_app(Scenario.default()), ssl_certfile=str(server_pem), ssl_keyfile=str(server_pem),
                            lifespan="off", log_config=None, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the HTTPS emulator did not start"
            time.sleep(0.01)
        yield f"https://127.0.0.1:{sock.getsockname()[1]}", ca_pem
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _health(base_url: str) -> dict[str, object]:
    async def check() -> dict[str, object]:
        async with GenesysClient.from_settings(load_settings()) as client:
            return await client.check_health(ACTION)

    return asyncio.run(check())


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("GENESYS_CLIENT_ID", "demo-client")
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "demo-secret")
    monkeypatch.delenv("GENESYS_REGION", raising=False)
    monkeypatch.delenv("GENESYS_LOGIN_BASE_URL", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return monkeypatch


def test_a_certificate_from_an_unknown_issuer_is_refused_before_any_credential_is_sent(
        https_emulator: tuple[str, Path], credentials: pytest.MonkeyPatch) -> None:
    base_url, ca_pem = https_emulator
    credentials.setenv("GENESYS_API_BASE_URL", base_url)
    with pytest.raises(HealthCheckFailed, match="certificate verify failed"):
        _health(base_url)

    credentials.setenv("SSL_CERT_FILE", str(ca_pem))
    assert _health(base_url)["id"] == ACTION


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765",
                                 "https://api.mypurecloud.ie"])
def test_plain_http_is_allowed_for_loopback_only(url: str, credentials: pytest.MonkeyPatch) -> None:
    credentials.setenv("GENESYS_API_BASE_URL", url)
    assert load_settings().genesys.api_base_url == url


@pytest.mark.parametrize("url", ["http://api.mypurecloud.ie", "http://10.0.0.8:8765", "http://127.0.0.1.nip.io",
                                 "ftp://127.0.0.1"])
def test_plain_http_to_any_other_host_is_refused(url: str, credentials: pytest.MonkeyPatch) -> None:
    credentials.setenv("GENESYS_API_BASE_URL", url)
    with pytest.raises(ConfigurationError, match="GENESYS_API_BASE_URL"):
        load_settings()
