from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from dataactions import sink
from dataactions.errors import ConfigurationError
from dataactions.mapping import Mapping
from dataactions.normalize import normalize_batch, raw_answer_json
from dataactions.sink import PartStore, build_results_table, new_run_id, results_schema, validate_run_id

WHEN = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
MAPPING = Mapping.from_dict({"columns": {
    "customer_id": "$.customer.id",
    "lifetime_value": {"path": "$.customer.lifetimeValue", "type": "number"},
    "since": {"path": "$.customer.since", "type": "timestamp"},
}})


def results_part(first_row: int, answers: list[dict | None]) -> pa.Table:
    n = len(answers)
    statuses = ["succeeded" if a is not None else "failed" for a in answers]
    return build_results_table(
        MAPPING,
        row_key=[f"k{first_row + i}" for i in range(n)],
        row_number=list(range(first_row, first_row + n)),
        status=statuses,
        attempts=[1] * n,
        error_code=[None if a is not None else "http.500" for a in answers],
        error_message=[None if a is not None else "HTTP 500" for a in answers],
        mapped=normalize_batch(MAPPING, answers).table,
        raw_answer=[raw_answer_json(a) for a in answers],
        recorded_at=WHEN,
    )


def customer(i: int) -> dict:
    return {"customer": {"id": f"C{i}", "lifetimeValue": i * 1.5, "since": "2020-01-01T00:00:00Z"}}


@pytest.fixture
def store(tmp_path: Path) -> PartStore:
    return PartStore(tmp_path / "out", "results", schema=results_schema(MAPPING))


def test_results_schema_order_and_types() -> None:
    schema = results_schema(MAPPING)
    assert schema.names == ["row_key", "row_number", "status", "error_code", "error_message", "attempts",
                            "customer_id", "lifetime_value", "since", "raw_answer", "recorded_at"]
    assert schema.field("row_number").type == pa.int64()
    assert schema.field("attempts").type == pa.int32()
    assert schema.field("recorded_at").type == pa.timestamp("us", tz="UTC")
    assert "run_id" not in schema.names


def test_write_commits_a_zstd_part_in_the_hive_path(store: PartStore) -> None:
    path = store.write("run-a", "part-000000", results_part(1, [customer(1), None]))
    assert path == store.root / "results" / "run_id=run-a" / "part-000000.parquet"
    metadata = pq.ParquetFile(path).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert "run_id" not in pq.read_schema(path).names
    assert [p.name for p in path.parent.iterdir()] == ["part-000000.parquet"]
    assert store.exists("run-a", "part-000000") and not store.exists("run-a", "part-000001")
    assert store.parts("run-a") == {"part-000000"} and store.parts("run-b") == set()
    assert store.runs() == {"run-a"}


def test_only_columns_that_repeat_values_are_dictionary_encoded(store: PartStore) -> None:
    path = store.write("run-a", "part-000000", results_part(1, [customer(1), customer(2), None]))
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    dictionary = {row_group.column(i).path_in_schema for i in range(row_group.num_columns)
                  if row_group.column(i).has_dictionary_page}
    assert {"status", "error_code", "attempts", "customer_id"} <= dictionary  # a mapped column may repeat values
    assert not dictionary & {"row_key", "row_number", "raw_answer", "recorded_at"}


def test_read_returns_the_run_in_part_order(store: PartStore) -> None:
    store.write("run-a", "part-000001", results_part(3, [customer(3)]))
    store.write("run-a", "part-000000", results_part(1, [customer(1), None]))
    table = store.read("run-a")
    assert table.column("row_number").to_pylist() == [1, 2, 3]
    assert table.column("customer_id").to_pylist() == ["C1", None, "C3"]
    assert table.column("recorded_at").to_pylist() == [WHEN] * 3
    assert store.read("run-none").num_rows == 0
    part = store.read_part("run-a", "part-000000", columns=["status", "attempts"])
    assert part.column_names == ["status", "attempts"] and part.column("status").to_pylist() == ["succeeded", "failed"]


def test_rewriting_a_part_replaces_it(store: PartStore) -> None:
    store.write("run-a", "part-000000", results_part(1, [None]))
    store.write("run-a", "part-000000", results_part(1, [customer(1)]))
    assert store.read("run-a").column("status").to_pylist() == ["succeeded"]


def write_two_runs(store: PartStore) -> None:
    store.write("run-a", "part-000000", results_part(1, [customer(1), None]))
    store.write("run-a", "part-000001", results_part(3, [None, None]))
    store.write("run-b", "part-000000", results_part(1, [customer(5)]))


def test_the_partitioned_dataset_reads_in_pyarrow_with_run_id(store: PartStore) -> None:
    write_two_runs(store)
    table = ds.dataset(store.path, partitioning="hive").to_table()
    assert table.num_rows == 5
    assert sorted(table.column("run_id").to_pylist()) == ["run-a"] * 4 + ["run-b"]
    own = store.dataset().to_table()
    assert own.schema.field("run_id").type == pa.string()
    assert own.schema.field("lifetime_value").type == pa.float64()


def test_the_partitioned_dataset_reads_in_pandas(store: PartStore) -> None:
    write_two_runs(store)
    frame = pd.read_parquet(store.path)
    assert len(frame) == 5
    assert sorted(frame["run_id"].astype(str)) == ["run-a"] * 4 + ["run-b"]
    assert frame["lifetime_value"].isna().sum() == 3
    assert str(frame["since"].dtype).startswith("datetime64[us, UTC]")


def test_the_partitioned_dataset_reads_in_duckdb(store: PartStore) -> None:
    duckdb = pytest.importorskip("duckdb")
    write_two_runs(store)
    (store.path / "run_id=run-a" / ".part-000009.0123.tmp").write_bytes(b"half a part")
    query = (f"SELECT run_id, count(*) AS n, count(customer_id) AS c "
             f"FROM read_parquet('{store.path}/**/*.parquet', hive_partitioning = true) GROUP BY run_id ORDER BY run_id")
    assert duckdb.sql(query).fetchall() == [("run-a", 4, 1), ("run-b", 1, 1)]


def test_readers_ignore_temporaries_and_sweep_removes_them(store: PartStore) -> None:
    write_two_runs(store)
    stale = store.path / "run_id=run-a" / ".part-000002.deadbeef.tmp"
    stale.write_bytes(b"not parquet at all")
    assert ds.dataset(store.path, partitioning="hive").to_table().num_rows == 5
    assert len(pd.read_parquet(store.path)) == 5
    assert store.parts("run-a") == {"part-000000", "part-000001"}
    assert store.sweep_temporaries("run-a") == 1
    assert not stale.exists()
    assert store.sweep_temporaries("run-never") == 0


def test_a_failed_write_leaves_nothing(store: PartStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(sink.pq, "write_table", explode)
    with pytest.raises(OSError, match="disk full"):
        store.write("run-a", "part-000000", results_part(1, [None]))
    assert list((store.path / "run_id=run-a").iterdir()) == []


def test_parts_must_match_the_dataset_schema(store: PartStore) -> None:
    part = results_part(1, [customer(1)])
    with pytest.raises(ValueError, match="part columns"):
        store.write("run-a", "p0", part.drop_columns(["since"]))
    with pytest.raises(ValueError, match="must not carry a run_id column"):
        store.write("run-a", "p0", part.append_column("run_id", pa.array(["x"])))
    widened = part.set_column(5, "attempts", part.column("attempts").cast(pa.int64()))
    assert pq.read_schema(store.write("run-a", "p0", widened)) == results_schema(MAPPING)


@pytest.mark.parametrize("run_id", ["", "-x", "a/b", "../up", "run id", "20240501", "1e5", "2024-05-01",
                                    "2024-05-01T10:00:00", "nan"])
def test_bad_run_ids_are_configuration_errors(run_id: str) -> None:
    with pytest.raises(ConfigurationError, match="run id"):
        validate_run_id(run_id)


def test_good_run_ids() -> None:
    for run_id in ["run-1", "nightly_2024-05-01", "a.b-c_d", new_run_id(), new_run_id(WHEN)]:
        assert validate_run_id(run_id) == run_id
    assert new_run_id(WHEN).startswith("run-20250506T070809Z-")


def test_bad_part_and_dataset_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="dataset name"):
        PartStore(tmp_path, "../x")
    with pytest.raises(ConfigurationError, match="part name"):
        PartStore(tmp_path, "results").part_path("run-a", ".hidden")


def test_build_results_table_checks_its_input() -> None:
    with pytest.raises(ValueError, match="unknown status"):
        build_results_table(MAPPING, row_key=["a"], row_number=[1], status=["ok"], attempts=1)
    with pytest.raises(ValueError, match=r"unknown status\(es\) \['ok'\]"):  # given as an Arrow array too
        build_results_table(MAPPING, row_key=pa.array(["a", "b"]), row_number=[1, 2],
                            status=pa.array(["ok", "failed"]), attempts=1)
    with pytest.raises(ValueError, match="'row_number' has 2 values; expected 1"):
        build_results_table(MAPPING, row_key=["a"], row_number=[1, 2], status=["rejected"], attempts=0)


def test_build_results_table_for_rejected_rows_without_answers() -> None:
    table = build_results_table(MAPPING, row_key=["#4"], row_number=[4], status=["rejected"], attempts=0,
                                error_code=["rejected"], error_message=["row #4: row: has 3 fields"])
    assert table.schema == results_schema(MAPPING)
    row = table.to_pylist()[0]
    assert row["attempts"] == 0 and row["customer_id"] is None and row["raw_answer"] is None
    assert row["recorded_at"].tzinfo is not None
