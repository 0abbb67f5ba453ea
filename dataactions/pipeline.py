"""One batch, start to commit: validate → invoke (concurrently) → normalize → write audit and results parts.

The results part is the batch's commit record: it is renamed into place last, so a batch whose results part
exists is finished and is never sent again; a batch killed before that point is sent again on resume.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dataactions.audit import AUDIT_SCHEMA, InputHasher, build_audit_table, canonical_input
from dataactions.errors import RowRejected
from dataactions.invoke import Invocation
from dataactions.limits import slot_priority
from dataactions.normalize import normalize_batch, raw_answer_json
from dataactions.readers import InputBatch
from dataactions.runtime import Runtime
from dataactions.sink import build_results_table

__all__ = ["BatchSummary", "enrich_batch", "part_name"]


@dataclass
class BatchSummary:
    index: int
    part: str
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    attempts: int = 0
    seconds: float = 0.0
    resumed: bool = False
    error_codes: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0  # 429 answers met while sending it (0 for a batch committed by an earlier session)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Row:
    number: int
    key: str
    inputs: dict[str, Any] | None
    status: str
    error_code: str | None = None
    error_message: str | None = None
    invocation: Invocation | None = None
    finished_at: datetime | None = None
    body: bytes | None = None  # the canonical JSON of `inputs`: the request body, and what the audit HMAC covers


def part_name(batch: InputBatch) -> str:
    return f"part-{batch.index:06d}-{batch.digest()[:12]}"


async def enrich_batch(rt: Runtime, batch: InputBatch) -> BatchSummary:
    """Enrich one batch and commit it; a batch committed by an earlier attempt is only summarised."""
    name = part_name(batch)
    if rt.results.exists(rt.spec.run_id, name):
        return summarise_committed(rt, batch.index, name)
    started = time.perf_counter()
    rows = _rejected_by_file(batch) + _validated(rt, batch)
    with slot_priority(batch.index):  # the oldest batch in flight goes first (limits.ConcurrencyLimit)
        await _invoke_all(rt, [row for row in rows if row.status == "pending"])
    rows.sort(key=lambda row: row.number)
    # On the event loop, fsyncs included: handing this to a worker thread (to keep the loop free during the
    # fsyncs) cost 10-25 % of the throughput, the thread and the loop contending for the GIL (make bench).
    results, audit = _tables(rt, rows)
    rt.audit.write(rt.spec.run_id, name, audit)
    rt.results.write(rt.spec.run_id, name, results)
    summary = _summary(batch.index, name, rows, time.perf_counter() - started)
    for status in ("succeeded", "failed", "rejected"):
        rt.metrics.record_rows(rt.spec.target, status, getattr(summary, status))
    return summary


def summarise_committed(rt: Runtime, index: int, name: str) -> BatchSummary:
    table = rt.results.read_part(rt.spec.run_id, name, columns=["status", "attempts", "error_code"])
    statuses = Counter(table.column("status").to_pylist())
    codes = Counter(c for c in table.column("error_code").to_pylist() if c)
    return BatchSummary(index, name, rows=table.num_rows, succeeded=statuses["succeeded"],
                        failed=statuses["failed"], rejected=statuses["rejected"],
                        attempts=int(pc.sum(table.column("attempts")).as_py() or 0), resumed=True,
                        error_codes=dict(codes))


def _rejected_by_file(batch: InputBatch) -> list[_Row]:
    return [_rejected_row(number, None, error) for number, error in batch.rejected]


def _validated(rt: Runtime, batch: InputBatch) -> list[_Row]:
    valid, rejected = rt.contract.validate_batch(batch)
    rows = [_Row(batch.row_numbers[i], batch.row_keys[i], payload, "pending", body=canonical_input(payload))
            for i, payload in valid]
    rows += [_rejected_row(batch.row_numbers[i], batch.rows[i], error) for i, error in rejected]
    return rows


def _rejected_row(number: int, inputs: dict[str, Any] | None, error: RowRejected) -> _Row:
    return _Row(number, error.row_key, inputs, "rejected", "rejected", str(error),
                finished_at=datetime.now(UTC))


async def _invoke_all(rt: Runtime, rows: list[_Row]) -> None:
    target = rt.spec.target
    if rt.spec.mode == "workflow":  # a row waits out its workflow between polls, holding no slot meanwhile
        async def run_workflow(row: _Row) -> None:
            _settle(row, await rt.invoker.run_workflow(target, row.inputs, name=f"{rt.spec.run_id}:{row.key}"))

        await asyncio.gather(*(run_workflow(row) for row in rows))
        return
    # Executes: `concurrency` workers per batch take the rows in turn, rather than one waiting coroutine chain
    # per row; the client's concurrency limit is still what bounds requests in flight across batches. Fewer
    # live objects per batch in flight: the garbage collector's share of a run fell by about a third (make bench).
    pending = iter(rows)
    execute, flatten = rt.invoker.execute, rt.spec.flatten

    async def worker() -> None:
        for row in pending:
            _settle(row, await execute(target, row.inputs, flatten=flatten, body=row.body))

    await asyncio.gather(*(worker() for _ in range(min(len(rows), rt.spec.concurrency))))


def _settle(row: _Row, invocation: Invocation) -> None:
    row.invocation = invocation
    row.status = invocation.status
    row.error_code = invocation.error_code
    row.error_message = invocation.error_message
    row.finished_at = datetime.now(UTC)


def _tables(rt: Runtime, rows: list[_Row]) -> tuple[pa.Table, pa.Table]:
    answers = [row.invocation.body if row.invocation and row.status == "succeeded" else None for row in rows]
    normalized = normalize_batch(rt.mapping, answers)
    for row, problem in zip(rows, normalized.errors):
        if problem and row.status == "succeeded":
            row.status, row.error_code, row.error_message = "failed", "normalize", problem
    shared = _shared_columns(rows)
    return _results_table(rt, rows, normalized.table, shared), _audit_table(rt, rows, shared)


def _shared_columns(rows: list[_Row]) -> dict[str, pa.Array]:
    """The columns results and audit parts both have, converted to Arrow once."""
    columns = {
        "row_key": [row.key for row in rows],
        "status": [row.status for row in rows],
        "attempts": [row.invocation.attempts if row.invocation else 0 for row in rows],
        "recorded_at": [row.finished_at for row in rows],
    }
    return {name: pa.array(values, AUDIT_SCHEMA.field(name).type) for name, values in columns.items()}


def _results_table(rt: Runtime, rows: list[_Row], mapped: pa.Table, shared: dict[str, pa.Array]) -> pa.Table:
    raw = [None if rt.secure or not row.invocation or row.invocation.body is None
           else row.invocation.text or raw_answer_json(row.invocation.body) for row in rows]
    return build_results_table(
        rt.mapping,
        row_number=[row.number for row in rows],
        error_code=[row.error_code for row in rows],
        error_message=[row.error_message for row in rows],
        mapped=mapped,
        raw_answer=raw,
        **shared,
    )


def _audit_table(rt: Runtime, rows: list[_Row], shared: dict[str, pa.Array]) -> pa.Table:
    invocations, hasher = [row.invocation for row in rows], InputHasher(rt.audit_key)
    return build_audit_table(
        action_id=rt.spec.target,
        input_hmac=[_input_hmac(hasher, row) for row in rows],
        http_status=[inv.http_status if inv else None for inv in invocations],
        duration_ms=[inv.duration_ms if inv else None for inv in invocations],
        correlation_id=[inv.correlation_id if inv else None for inv in invocations],
        **shared,
    )


def _input_hmac(hasher: InputHasher, row: _Row) -> str | None:
    """A sent row's: of the body it was sent with (encoded once); a rejected row's: of its raw input, if any."""
    if row.body is not None:
        return hasher.hexdigest_of(row.body)
    return None if row.inputs is None else hasher.hexdigest(row.inputs)


def _summary(index: int, name: str, rows: list[_Row], seconds: float) -> BatchSummary:
    statuses = Counter(row.status for row in rows)
    return BatchSummary(index, name, rows=len(rows), succeeded=statuses["succeeded"], failed=statuses["failed"],
                        rejected=statuses["rejected"],
                        attempts=sum(row.invocation.attempts for row in rows if row.invocation),
                        seconds=seconds, error_codes=dict(Counter(row.error_code for row in rows if row.error_code)),
                        rate_limited=sum(row.invocation.rate_limited for row in rows if row.invocation))
