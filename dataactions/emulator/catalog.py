"""The action catalog: compiled actions, and their wire shapes (Action, ActionEntityListing)."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dataactions.emulator.contract import Validator, compile_validator
from dataactions.emulator.generators import GENERATORS, Generator
from dataactions.emulator.latency import LatencySampler
from dataactions.emulator.scenario import ActionSpec

__all__ = ["ACTIONS_PATH", "CatalogAction", "action_entity", "build_catalog", "listing"]

ACTIONS_PATH = "/api/v2/integrations/actions"


@dataclass(slots=True)
class CatalogAction:
    spec: ActionSpec
    validate_input: Validator
    validate_output: Validator
    generate: Generator
    latency: LatencySampler | None


def build_catalog(actions: list[ActionSpec], rng: random.Random) -> dict[str, CatalogAction]:
    return {spec.id: _compile(spec, rng) for spec in actions}


def _compile(spec: ActionSpec, rng: random.Random) -> CatalogAction:
    latency = LatencySampler(spec.latency, rng) if spec.latency is not None else None
    return CatalogAction(
        spec,
        compile_validator(spec.input_schema),
        compile_validator(spec.success_schema),
        GENERATORS[spec.output],
        latency,
    )


def action_entity(spec: ActionSpec, *, contract: bool = False, config: bool = False) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "integrationId": spec.integration_id or _integration_id(spec.category),
        "category": spec.category,
        "version": spec.version,
        "secure": spec.secure,
        "selfUri": f"{ACTIONS_PATH}/{spec.id}",
    }
    if contract:
        entity["contract"] = {
            "input": {"inputSchema": spec.input_schema},
            "output": {"successSchema": spec.success_schema},
        }
    if config:
        entity["config"] = action_config(spec)
    return entity


def _integration_id(category: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator-integration:{category}"))


def action_config(spec: ActionSpec) -> dict[str, Any]:
    """`config` (includeConfig=true): defaults shaped like a web-service action, overlaid by `spec.config`."""
    timeout = int(spec.timeout_seconds) if float(spec.timeout_seconds).is_integer() else spec.timeout_seconds
    request = {
        "requestUrlTemplate": f"https://backend.emulator.invalid/{spec.output}",
        "requestType": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestTemplate": "${input.rawRequest}",
    }
    response = {"translationMap": {}, "translationMapDefaults": {}, "successTemplate": "${rawResult}"}
    request.update(spec.config.get("request", {}))
    response.update(spec.config.get("response", {}))
    return {"timeoutSeconds": timeout, "request": request, "response": response}


def listing(
    actions: list[ActionSpec], page_size: int, page_number: int, params: dict[str, str], config: bool
) -> dict[str, Any]:
    """ActionEntityListing of one page; `params` are the query filters, echoed into the page URIs."""
    total = len(actions)
    page_count = math.ceil(total / page_size)
    start = (page_number - 1) * page_size
    entities = [action_entity(spec, config=config) for spec in actions[start : start + page_size]]
    uri = _page_uris(params, page_size)
    return {
        "entities": entities,
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "nextUri": uri(page_number + 1) if page_number < page_count else None,
        "previousUri": uri(page_number - 1) if page_number > 1 else None,
        "lastUri": uri(max(page_count, 1)),
        "selfUri": uri(page_number),
    }


def _page_uris(params: dict[str, str], page_size: int) -> Callable[[int], str]:
    def uri(number: int) -> str:
        query = {**params, "pageSize": str(page_size), "pageNumber": str(number)}
        return f"{ACTIONS_PATH}?{urlencode(query)}"

    return uri
