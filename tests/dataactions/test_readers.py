from __future__ import annotations

import json
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataactions import readers
from dataactions.errors import ConfigurationError, RowRejected
from dataactions.readers import InputBatch, count_rows, detect_format, iter_batches


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def all_batches(path: Path, batch_size: int = 100, **kwargs: object) -> list[InputBatch]:
    return list(iter_batches(path, batch_size, **kwargs))  # type: ignore[arg-type]


def rejections(batches: list[InputBatch]) -> dict[int, RowRejected]:
    return {n: r for b in batches for n, r in b.rejected}


def assert_covers(batches: list[InputBatch], total: int, batch_size: int) -> None:
    expected_first = 1
    for index, batch in enumerate(batches):
        assert batch.index == index
        assert batch.first_row == expected_first
        assert sorted(batch.row_numbers + batch.rejected_row_numbers) == list(range(batch.first_row, batch.last_row + 1))
        assert len(batch.rows) == len(batch.row_keys) == len(batch.row_numbers)
        assert batch.rejected_row_numbers == sorted(batch.rejected_row_numbers)
        assert batch.size == batch_size or index == len(batches) - 1
        expected_first = batch.last_row + 1
    assert expected_first - 1 == total


# -- CSV ---------------------------------------------------------------------------------------------------------


def test_csv_rows_are_strings_with_none_for_empty_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,phone,note\nc1,+3212345678,\nc2,,hello world\n")
    [batch] = all_batches(path, key_column="id")
    assert batch.rows == [
        {"id": "c1", "phone": "+3212345678", "note": None},
        {"id": "c2", "phone": None, "note": "hello world"},
    ]
    assert batch.row_keys == ["c1", "c2"]
    assert batch.row_numbers == [1, 2]
    assert batch.rejected == []


def test_batches_have_fixed_size_and_cover_every_row(tmp_path: Path) -> None:
    lines = "".join(f"k{i},{i}\n" for i in range(7))
    path = write(tmp_path / "in.csv", "id,n\n" + lines)
    batches = all_batches(path, 3, key_column="id")
    assert [b.size for b in batches] == [3, 3, 1]
    assert [b.first_row for b in batches] == [1, 4, 7]
    assert_covers(batches, 7, 3)


def test_without_key_column_the_key_is_the_row_number(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "a\nx\ny\n")
    [batch] = all_batches(path)
    assert batch.row_keys == ["1", "2"]


def test_ragged_lines_are_rejected_naming_row_and_expected_width(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,a,b\nk1,1,2\nk2,1,2,3\nk3,1\nk4,1,2\n")
    batches = all_batches(path, key_column="id")
    assert batches[0].row_keys == ["k1", "k4"]
    rejected = rejections(batches)
    assert set(rejected) == {2, 3}
    assert rejected[2].field_name is None
    assert rejected[2].expected == "has 4 fields; expected 3, as many as the header has columns"
    assert rejected[3].expected == "has 2 fields; expected 3, as many as the header has columns"
    assert str(rejected[3]) == "row #3: row: has 2 fields; expected 3, as many as the header has columns"
    assert_covers(batches, 4, 100)


def test_non_utf8_bytes_reject_the_row_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", b"id,name,city\nk1,Ann,Gent\nk2,Bj\xf6rn,Malm\xf6\nk3,Zo\xc3\xab,Li\xc3\xa8ge\n")
    batches = all_batches(path, key_column="id")
    rejected = rejections(batches)
    assert list(rejected) == [2]
    assert (rejected[2].row_key, rejected[2].field_name, rejected[2].expected) == ("k2", "name", "is not valid UTF-8 text")
    assert batches[0].rows[1] == {"id": "k3", "name": "Zoë", "city": "Liège"}


def test_non_utf8_key_is_rejected_under_the_row_number(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", b"id,name\n\xff1,Ann\n")
    [batch] = all_batches(path, key_column="id")
    [(number, error)] = batch.rejected
    assert (number, error.row_key, error.field_name) == (1, "#1", "id")


def test_quoted_newlines_bom_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", '\ufeffid,note\n\nk1,"two\nlines"\n\nk2,"a,b"\n\n')
    [batch] = all_batches(path, key_column="id")
    assert batch.rows == [{"id": "k1", "note": "two\nlines"}, {"id": "k2", "note": "a,b"}]
    assert batch.row_numbers == [1, 2]
    assert count_rows(path) == 2


@pytest.mark.parametrize("content", ["", "\n\n", "id,name\n", "id,name\n\n"])
def test_empty_and_header_only_files_give_no_batch(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "in.csv", content)
    assert all_batches(path, key_column="id") == []
    assert count_rows(path) == 0


def test_missing_key_column_is_a_configuration_error_at_start(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "customerId,phone\nc1,1\n")
    with pytest.raises(ConfigurationError) as info:
        iter_batches(path, 10, key_column="id")
    assert "key column 'id'" in str(info.value)
    assert "'customerId', 'phone'" in str(info.value)


def test_header_with_repeated_column_is_a_configuration_error(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,a,a\n1,2,3\n")
    with pytest.raises(ConfigurationError, match="repeats column"):
        iter_batches(path, 10)


def test_empty_key_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,a\n,1\n  ,2\nk3,3\n")
    batches = all_batches(path, key_column="id")
    rejected = rejections(batches)
    assert [(r.row_key, r.field_name, r.expected) for r in rejected.values()] == [
        ("#1", "id", "is empty; every row needs a key"),
        ("#2", "id", "is empty; every row needs a key"),
    ]
    assert batches[0].row_keys == ["k3"]


def test_duplicate_keys_reject_the_later_rows_across_batches(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,a\nk1,1\nk2,2\nk1,3\nk3,4\nk2,5\nk1,6\n")
    batches = all_batches(path, 2, key_column="id")
    rejected = rejections(batches)
    assert {n: (r.row_key, r.field_name, r.expected) for n, r in rejected.items()} == {
        3: ("k1", "id", "duplicate key: same key as row 1"),
        5: ("k2", "id", "duplicate key: same key as row 2"),
        6: ("k1", "id", "duplicate key: same key as row 1"),
    }
    assert [k for b in batches for k in b.row_keys] == ["k1", "k2", "k3"]


def test_a_rejected_row_does_not_claim_its_key(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,a,b\nk1,1\nk1,1,2\n")
    batches = all_batches(path, key_column="id")
    assert batches[0].row_keys == ["k1"]
    assert batches[0].row_numbers == [2]


class _SmallSeenKeys(readers._SeenKeys):
    _BUFFER = 4


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=30), max_size=12))
def test_seen_keys_matches_a_plain_dict(batches: list[list[int]]) -> None:
    seen = _SmallSeenKeys()
    reference: dict[str, int] = {}
    row = 1
    for batch in batches:
        keys = [f"key-{k}" for k in batch]
        numbers = list(range(row, row + len(keys)))
        row += len(keys)
        expected = []
        for key, number in zip(keys, numbers):
            first = reference.setdefault(key, number)
            expected.append(None if first == number else first)
        assert seen.first_rows(keys, numbers) == expected


def test_seen_keys_settle_into_few_sorted_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers._SeenKeys, "_BUFFER", 16)
    seen = readers._SeenKeys()
    for start in range(0, 5000, 100):
        seen.first_rows([f"k{i}" for i in range(start, start + 100)], list(range(start + 1, start + 101)))
    assert len(seen._levels) <= 12
    assert sum(len(h) for h, _ in seen._levels) + len(seen._recent) == 5000
    assert seen.first_rows(["k0", "k4999", "new"], [6001, 6002, 6003]) == [1, 5000, None]


# -- Parquet -----------------------------------------------------------------------------------------------------


def test_parquet_keeps_native_types_and_crosses_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    since = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    table = pa.table({
        "id": pa.array(range(10), pa.int64()),
        "amount": pa.array([Decimal("1.50")] * 10, pa.decimal128(5, 2)),
        "since": pa.array([since] * 10, pa.timestamp("us", tz="UTC")),
        "vip": [True, None] * 5,
        "tags": [[1, 2]] * 10,
    })
    pq.write_table(table, path, row_group_size=4)
    batches = all_batches(path, 3, key_column="id")
    assert_covers(batches, 10, 3)
    first = batches[0].rows[0]
    assert first["id"] == 0 and first["amount"] == Decimal("1.50") and first["since"] == since
    assert first["vip"] is True and batches[0].rows[1]["vip"] is None
    assert first["tags"] == [1, 2]
    assert [k for b in batches for k in b.row_keys] == [str(i) for i in range(10)]
    assert count_rows(path) == 10


def test_parquet_missing_key_column(tmp_path: Path) -> None:
    path = tmp_path / "in.pq"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(ConfigurationError, match="key column 'id' is not in .*columns found: 'a'"):
        iter_batches(path, 10, key_column="id")


def test_empty_parquet_gives_no_batch(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), path)
    assert all_batches(path, key_column="id") == []


def test_a_file_that_is_not_parquet_is_a_configuration_error(tmp_path: Path) -> None:
    path = write(tmp_path / "in.parquet", "id,a\n1,2\n")
    with pytest.raises(ConfigurationError, match="cannot read .* as Parquet"):
        iter_batches(path, 10, key_column="id")


# -- JSONL -------------------------------------------------------------------------------------------------------


def test_jsonl_bad_lines_are_rejected_with_the_json_error(tmp_path: Path) -> None:
    lines = [b'{"id": "k1", "n": 1}', b"", b'{"id": "k2", "n": }', b"[1, 2]", b'{"id": "k4", "x": "\xff"}',
             b'{"id": 5, "n": 2.5, "nested": {"a": 1}}']
    path = write(tmp_path / "in.jsonl", b"\n".join(lines) + b"\n")
    batches = all_batches(path, key_column="id")
    rejected = rejections(batches)
    assert rejected[2].expected == "is not valid JSON: Expecting value at column 19"
    assert rejected[2].row_key == "#2"
    assert rejected[3].expected == "must be a JSON object, not an array"
    assert rejected[4].expected.startswith("is not valid UTF-8 (byte ")
    assert batches[0].rows == [{"id": "k1", "n": 1}, {"id": 5, "n": 2.5, "nested": {"a": 1}}]
    assert batches[0].row_keys == ["k1", "5"]
    assert batches[0].row_numbers == [1, 5]
    assert count_rows(path) == 5


def test_jsonl_missing_key_column_is_judged_on_the_first_object(tmp_path: Path) -> None:
    path = write(tmp_path / "in.ndjson", 'not json\n{"customerId": "c1"}\n')
    with pytest.raises(ConfigurationError, match="key column 'id'.*'customerId'"):
        iter_batches(path, 10, key_column="id")


def test_jsonl_object_without_the_key_later_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", '{"id": "k1"}\n{"other": 1}\n{"id": {"a": 1}}\n')
    rejected = rejections(all_batches(path, key_column="id"))
    assert rejected[2].expected == "is empty; every row needs a key"
    assert rejected[3].expected == "must be a single text or number value to serve as the row key"


def test_empty_jsonl_gives_no_batch(tmp_path: Path) -> None:
    assert all_batches(write(tmp_path / "in.jsonl", "\n \n"), key_column="id") == []


# -- formats, determinism -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "given", "expected"), [
    ("a.csv", None, "csv"), ("a.CSV", None, "csv"), ("a.pq", None, "parquet"), ("a.parquet", None, "parquet"),
    ("a.ndjson", None, "jsonl"), ("a.jsonl", None, "jsonl"), ("a.txt", "csv", "csv"), ("a.csv", "JSONL", "jsonl"),
])
def test_detect_format(name: str, given: str | None, expected: str) -> None:
    assert detect_format(name, given) == expected


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot tell the format"):
        detect_format("input.xlsx")
    with pytest.raises(ConfigurationError, match="unknown input format 'xml'"):
        detect_format("input.csv", "xml")
    with pytest.raises(ConfigurationError, match="input file not found"):
        iter_batches(tmp_path / "nope.csv", 10)
    with pytest.raises(ConfigurationError, match="batch size"):
        iter_batches(tmp_path / "nope.csv", 0)


def test_digest_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    body = "id,a\n" + "".join(f"k{i},{i}\n" for i in range(10)) + "k1,dup\nk99,1,2\n"
    path = write(tmp_path / "in.csv", body)
    first = [b.digest() for b in all_batches(path, 4, key_column="id")]
    assert first == [b.digest() for b in all_batches(path, 4, key_column="id")]
    assert len(set(first)) == len(first)
    write(path, body.replace("k5,5", "k5,6"))
    second = [b.digest() for b in all_batches(path, 4, key_column="id")]
    assert second[0] == first[0] and second[1] != first[1] and second[2] == first[2]


def test_digest_is_the_same_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "when": [datetime(2024, 1, 1, tzinfo=UTC), None],
                             "x": [Decimal("1.5"), None]}), path)
    here = [b.digest() for b in all_batches(path, 1, key_column="id")]
    code = ("import json, sys; from dataactions.readers import iter_batches; "
            "print(json.dumps([b.digest() for b in iter_batches(sys.argv[1], 1, key_column='id')]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here


def test_large_cells_stay_in_their_row(tmp_path: Path) -> None:
    big = "a" * 200_000
    path = write(tmp_path / "in.csv", f'id,note,x\nk1,{big},x\nk2,"{big}\nmore",y\nk3,1,2\n')
    [batch] = all_batches(path, key_column="id")
    assert batch.row_keys == ["k1", "k2", "k3"] and batch.rejected == []
    assert [len(row["note"]) for row in batch.rows] == [200_000, 200_005, 1]


def test_batches_pickle_with_their_rejections(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "id,a\nk1,1\nk2\nk1,3\n")
    [batch] = all_batches(path, key_column="id")
    copy = pickle.loads(pickle.dumps(batch))
    assert copy.digest() == batch.digest()
    assert [(n, str(e)) for n, e in copy.rejected] == [(n, str(e)) for n, e in batch.rejected]
    assert isinstance(copy.rejected[0][1], RowRejected)
