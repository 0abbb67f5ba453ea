"""The emulated remote call behind execute and test: faults, latency, timeoutSeconds, the generator."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from dataactions.emulator.catalog import CatalogAction
from dataactions.emulator.errors import REMOTE_STATUSES, ApiError, bad_credentials, for_status, too_many_requests
from dataactions.emulator.limits import record_throttle
from dataactions.emulator.scenario import Fault
from dataactions.emulator.state import EmulatorState
from dataactions.emulator.tokens import Token

__all__ = ["Outcome", "call_remote", "remote_error"]


@dataclass(slots=True)
class Outcome:
    """What the remote did: answered `output`, met a remote-side `fault`, or ran past the timeout.

    A `malformed_json` fault carries the output it garbles.
    """

    output: dict[str, Any] | None = None
    fault: Fault | None = None
    timed_out: bool = False


async def call_remote(
    state: EmulatorState,
    token: Token,
    action: CatalogAction,
    inputs: dict[str, Any],
    digest: str,
    attempt: int,
    endpoint: str,
) -> Outcome:
    """Run the remote call; platform-side faults (429, revoked token, 503...) raise `ApiError` at once."""
    fault = state.faults.pick(action.spec.id, endpoint, inputs, digest, attempt)
    if fault is not None:
        _raise_platform_fault(state, token, fault)
    delay = math.inf if fault is not None and fault.kind == "timeout" else state.latency_for(action).seconds()
    timeout = action.spec.timeout_seconds
    if delay >= timeout:
        await asyncio.sleep(timeout)
        return Outcome(timed_out=True)
    if delay > 0:
        await asyncio.sleep(delay)
    if fault is not None and fault.kind != "malformed_json":
        return Outcome(fault=fault)
    return Outcome(output=action.generate(inputs), fault=fault)


def _raise_platform_fault(state: EmulatorState, token: Token, fault: Fault) -> None:
    if fault.kind == "revoke_token":
        state.tokens.revoke(token.value)
        raise bad_credentials()
    if fault.kind != "status" or fault.status in REMOTE_STATUSES:
        return
    if fault.status == 429:
        wait = 1 if fault.retry_after is None else fault.retry_after
        now = state.clock()
        record_throttle(token, now, now + wait)
        raise too_many_requests(wait)
    raise for_status(fault.status, fault.code, fault.message)  # type: ignore[arg-type]


def remote_error(fault: Fault) -> ApiError:
    """The ErrorBody of a remote-side status fault (400/500/502/504 with ACTION.REMOTE_ENDPOINT)."""
    return for_status(fault.status or 500, fault.code, fault.message)
