"""Typed settings from the environment (and `.env`), validated once at start.

`GenesysSettings` (prefix `GENESYS_`) says where the org is and how to log in; `PipelineSettings`
(prefix `DATAACTIONS_`) holds the knobs of a run. Secrets are `SecretStr`: they print as `**********`.

More OAuth clients raise the request rate (Genesys limits each client-credentials token, genesys-api.md §4):
`GENESYS_EXTRA_CLIENTS='[{"client_id": "...", "client_secret": "..."}]'` adds clients beside
`GENESYS_CLIENT_ID`/`GENESYS_CLIENT_SECRET`; each gets its own token and its own `rate_per_minute`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from dataactions.errors import ConfigurationError

__all__ = [
    "REGION_HOSTS",
    "ClientCredentials",
    "GenesysSettings",
    "PipelineSettings",
    "Settings",
    "load_settings",
]

REGION_HOSTS: dict[str, str] = {
    "us_east_1": "mypurecloud.com",
    "us_east_2": "use2.us-gov-pure.cloud",
    "us_west_2": "usw2.pure.cloud",
    "ca_central_1": "cac1.pure.cloud",
    "sa_east_1": "sae1.pure.cloud",
    "mx_central_1": "mxc1.pure.cloud",
    "eu_west_1": "mypurecloud.ie",
    "eu_west_2": "euw2.pure.cloud",
    "eu_central_1": "mypurecloud.de",
    "eu_central_2": "euc2.pure.cloud",
    "ap_northeast_1": "mypurecloud.jp",
    "ap_northeast_2": "apne2.pure.cloud",
    "ap_northeast_3": "apne3.pure.cloud",
    "ap_south_1": "aps1.pure.cloud",
    "ap_southeast_1": "apse1.pure.cloud",
    "ap_southeast_2": "mypurecloud.com.au",
    "me_central_1": "mec1.pure.cloud",
}


class ClientCredentials(BaseModel):
    """One OAuth client-credentials client (its secret prints as `**********`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)


class GenesysSettings(BaseSettings):
    """Where the Genesys Cloud org is, and the OAuth client-credentials to reach it."""

    model_config = SettingsConfigDict(env_prefix="GENESYS_", env_file=".env", extra="ignore")

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    extra_clients: list[ClientCredentials] = Field(
        default_factory=list, description="more OAuth clients, each with its own token and rate budget (JSON list)")
    region: str | None = None
    api_base_url: str | None = None
    login_base_url: str | None = None

    @model_validator(mode="after")
    def _distinct_clients(self) -> GenesysSettings:
        ids = [self.client_id, *(extra.client_id for extra in self.extra_clients)]
        repeated = sorted({i for i in ids if i and ids.count(i) > 1})
        if repeated:
            raise ValueError(f"each OAuth client may be given once (they share nothing else); repeated: {repeated}")
        return self

    @property
    def clients(self) -> list[ClientCredentials]:
        """Every OAuth client to log in with: `GENESYS_CLIENT_ID` first, then `GENESYS_EXTRA_CLIENTS`."""
        return [ClientCredentials(client_id=self.client_id, client_secret=self.client_secret), *self.extra_clients]

    @model_validator(mode="after")
    def _resolve_urls(self) -> GenesysSettings:
        if not self.api_base_url:
            if not self.region:
                raise ValueError("set GENESYS_REGION (e.g. us_east_1 or mypurecloud.ie) or GENESYS_API_BASE_URL")
            self.api_base_url = f"https://api.{_region_host(self.region)}"
        self.api_base_url = _checked_base_url(self.api_base_url, "GENESYS_API_BASE_URL")
        self.login_base_url = _checked_base_url(
            self.login_base_url or _login_url_for(self.api_base_url), "GENESYS_LOGIN_BASE_URL"
        )
        return self

    def require_credentials(self) -> None:
        missing = [name for name, value in (("GENESYS_CLIENT_ID", self.client_id),
                                            ("GENESYS_CLIENT_SECRET", self.client_secret.get_secret_value()))
                   if not value]
        if missing:
            raise ConfigurationError(f"{' and '.join(missing)} must be set (an OAuth client-credentials client)")


class PipelineSettings(BaseSettings):
    """The knobs of a bulk run."""

    model_config = SettingsConfigDict(env_prefix="DATAACTIONS_", env_file=".env", extra="ignore")

    output_dir: Path = Path("data/output")
    batch_size: int = Field(500, ge=1, le=100_000)
    batches_per_task: int | None = Field(
        None, ge=1, le=10_000,
        description="at most this many batches per Prefect task run, enriched in turn, each committed on its "
                    "own; unset: 1 under a rate limit or a failure ceiling, 16 without")
    concurrency: int = Field(16, ge=1, le=1024)
    rate_per_minute: float = Field(290.0, ge=0, description="per token; Genesys allows 300, 0 turns it off")
    audit_key: SecretStr = SecretStr("")
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    retry_unsafe: bool = Field(True, description="retry a POST that may have reached the server")
    max_attempts: int = Field(5, ge=1, le=50)
    backoff_base_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, ge=0)
    max_retry_after_seconds: float = Field(120.0, ge=0)
    request_timeout_seconds: float = Field(75.0, gt=0)
    connect_timeout_seconds: float = Field(10.0, gt=0)
    token_renew_margin_seconds: float = Field(300.0, ge=0)
    workflow_poll_initial_seconds: float = Field(0.5, gt=0)
    workflow_poll_max_seconds: float = Field(15.0, gt=0)
    workflow_deadline_seconds: float = Field(900.0, gt=0)
    breaker_window: int = Field(50, ge=1)
    breaker_failure_ratio: float = Field(0.9, gt=0, le=1)
    metrics_exporter: Literal["none", "console", "otlp", "prometheus"] = "none"
    metrics_host: str = Field("127.0.0.1", description="address the prometheus exporter binds")
    metrics_port: int = Field(9464, ge=0, le=65535, description="port of the prometheus exporter")

    @field_validator("retry_statuses")
    @classmethod
    def _statuses_are_http(cls, value: frozenset[int]) -> frozenset[int]:
        bad = sorted(s for s in value if not 400 <= s <= 599)
        if bad:
            raise ValueError(f"retry statuses must be 4xx or 5xx, got {bad}")
        return value

    def require_audit_key(self) -> None:
        if len(self.audit_key.get_secret_value()) < 16:
            raise ConfigurationError(
                "DATAACTIONS_AUDIT_KEY must be set to at least 16 characters (the audit HMAC key); "
                "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )


class Settings:
    """Both halves, loaded together so that one message lists every bad setting."""

    def __init__(self, genesys: GenesysSettings, pipeline: PipelineSettings) -> None:
        self.genesys = genesys
        self.pipeline = pipeline


def load_settings(genesys: dict[str, object] | None = None, pipeline: dict[str, object] | None = None) -> Settings:
    """Read the environment, apply explicit overrides, and raise `ConfigurationError` naming what is wrong."""
    errors: list[str] = []
    halves = []
    for cls, overrides in ((GenesysSettings, genesys), (PipelineSettings, pipeline)):
        try:
            halves.append(cls(**{k: v for k, v in (overrides or {}).items() if v is not None}))
        except ValidationError as exc:
            errors.extend(_describe(exc, cls))
        except SettingsError as exc:  # a value that is not valid JSON (it says which field, never the value)
            errors.append(f"{cls.model_config.get('env_prefix', '')}: {exc}")
    if errors:
        raise ConfigurationError("invalid settings:\n  " + "\n  ".join(errors))
    return Settings(*halves)


def _describe(exc: ValidationError, cls: type[BaseSettings]) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    described = []
    for err in exc.errors(include_input=False, include_url=False):
        field_name = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}{field_name.upper()}" if field_name else prefix.rstrip("_")
        described.append(f"{where}: {err['msg']}")
    return described


def _region_host(region: str) -> str:
    region = region.strip().lower()
    if region in REGION_HOSTS:
        return REGION_HOSTS[region]
    if "." in region:
        return region.removeprefix("api.").removeprefix("login.")
    raise ValueError(f"unknown region {region!r}; use one of {', '.join(sorted(REGION_HOSTS))} or a host name")


def _login_url_for(api_base_url: str) -> str:
    parts = urlsplit(api_base_url)
    host = parts.hostname or ""
    if host.startswith("api."):
        return api_base_url.replace("//api.", "//login.", 1)
    return api_base_url


def _checked_base_url(url: str, name: str) -> str:
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"{name} uses plain http for a non-loopback host {parts.hostname!r}; use https")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
