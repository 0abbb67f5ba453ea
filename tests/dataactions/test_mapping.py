from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonpath_ng.ext import parse as parse_jsonpath

from dataactions.errors import ConfigurationError
from dataactions.mapping import MISSING, Mapping, Matches, compile_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "data" / "mappings" / "customer_by_phone.yaml"


def mapping_of(**columns: Any) -> Mapping:
    return Mapping.from_dict({"columns": columns})


def config_error(document: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        Mapping.from_dict(document)
    return str(info.value)


def test_the_example_mapping_loads() -> None:
    mapping = Mapping.load(EXAMPLE)
    assert mapping.names[:3] == ["customer_id", "customer_name", "tier"]
    assert mapping.schema.field("lifetime_value").type == pa.float64()
    assert mapping.schema.field("customer_since").type == pa.timestamp("us", tz="UTC")
    assert mapping.schema.field("vip").type == pa.bool_()
    column = {c.name: c for c in mapping.columns}
    assert column["lifetime_value"].default == 0.0 and column["lifetime_value"].has_default
    assert column["vip"].default is False and column["vip"].has_default
    assert column["account_ids"].singular is False
    assert column["first_account_id"].singular is True


def test_shorthand_and_types() -> None:
    mapping = mapping_of(
        a="$.a", b={"path": "$.b", "type": "integer"}, c={"path": "$.c", "type": "number"},
        d={"path": "$.d", "type": "boolean"}, e={"path": "$.e", "type": "timestamp"},
    )
    assert mapping.arrow_fields() == [
        pa.field("a", pa.string()), pa.field("b", pa.int64()), pa.field("c", pa.float64()),
        pa.field("d", pa.bool_()), pa.field("e", pa.timestamp("us", tz="UTC")),
    ]


@pytest.mark.parametrize(("columns", "message"), [
    ({"x": {"path": "$.x", "type": "decimal"}}, "column 'x': unknown type 'decimal'; use one of string, integer"),
    ({"x": "$.x[?(@.a ==]"}, "column 'x': '$.x[?(@.a ==]' is not valid JSONPath"),
    ({"x": "customer.id"}, "column 'x': 'path' must be a JSONPath starting with '$'"),
    ({"x": {"type": "string"}}, "column 'x': 'path' must be a JSONPath starting with '$'"),
    ({"first name": "$.a"}, "column 'first name': a column name must match [A-Za-z_][A-Za-z0-9_]*"),
    ({"1st": "$.a"}, "column '1st': a column name must match"),
    ({"status": "$.status"}, "column 'status': the name is reserved"),
    ({"Row_Key": "$.id"}, "column 'Row_Key': the name is reserved"),
    ({"run_id": "$.id"}, "column 'run_id': the name is reserved"),
    ({"n": {"path": "$.n", "type": "integer", "default": "many"}},
     "column 'n': the default does not fit type integer: expected an integer, got text that is not an integer"),
    ({"n": {"path": "$.n", "type": "integer", "default": True}}, "column 'n': the default does not fit type integer"),
    ({"t": {"path": "$.t", "type": "timestamp", "default": "soon"}}, "column 't': the default does not fit type"),
    ({"x": {"path": "$.x", "typ": "string"}}, "column 'x': unknown key(s) ['typ']"),
    ({"x": 42}, "column 'x': expected a JSONPath string or {path, type, default}"),
    ({"Name": "$.a", "name": "$.b"}, "columns 'Name' and 'name' differ only in case"),
])
def test_mistakes_name_the_column(columns: dict[str, Any], message: str) -> None:
    assert message in config_error({"columns": columns})


@pytest.mark.parametrize("document", [[], "columns", {"columns": ["a"]}, {"colums": {}}])
def test_a_document_that_is_not_a_mapping(document: Any) -> None:
    assert "mapping" in config_error(document) or "unknown top-level" in config_error(document)


def test_load_reports_yaml_problems(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("columns:\n  a: $.a\n  a: $.b\n")
    with pytest.raises(ConfigurationError, match="not valid YAML.*key 'a' appears twice"):
        Mapping.load(path)
    path.write_text("columns: [\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        Mapping.load(path)
    with pytest.raises(ConfigurationError, match="cannot read mapping file"):
        Mapping.load(tmp_path / "missing.yaml")


def test_timestamp_defaults_accept_yaml_dates(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("columns:\n  t: {path: $.t, type: timestamp, default: 2024-01-02}\n")
    assert Mapping.load(path).columns[0].default == 1704153600000000


def test_identity_mapping() -> None:
    for mapping in (Mapping.identity(), Mapping.load(None), Mapping.from_dict({"columns": {}})):
        assert mapping.is_identity and mapping.arrow_fields() == [] and mapping.schema == pa.schema([])


def test_digest_is_stable_and_sensitive() -> None:
    base = mapping_of(a="$.a", n={"path": "$.n", "type": "integer", "default": 1})
    assert base.digest() == mapping_of(a={"path": "$.a"}, n={"path": "$.n", "type": "integer", "default": "1"}).digest()
    others = [
        mapping_of(a="$.b", n={"path": "$.n", "type": "integer", "default": 1}),
        mapping_of(a="$.a", n={"path": "$.n", "type": "number", "default": 1}),
        mapping_of(a="$.a", n={"path": "$.n", "type": "integer", "default": 2}),
        mapping_of(a="$.a", n={"path": "$.n", "type": "integer"}),
        mapping_of(n={"path": "$.n", "type": "integer", "default": 1}, a="$.a"),
    ]
    assert len({base.digest(), *(m.digest() for m in others)}) == 6


def test_digest_is_the_same_in_another_process() -> None:
    code = "import sys; from dataactions.mapping import Mapping; print(Mapping.load(sys.argv[1]).digest())"
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == Mapping.load(EXAMPLE).digest()


@pytest.mark.parametrize(("path", "singular"), [
    ("$", True), ("$.a.b", True), ("$.a[0].b", True), ("$['a b']", True), ("$.a['x.y'][2]", True),
    ("$.a[*].b", False), ("$..id", False), ("$.a[-1]", False), ("$.a[0:2]", False), ("$.a[?(@.b > 1)].c", False),
    ("$.*", False), ("$['a','b']", False),
])
def test_singular_paths_get_the_fast_lookup(path: str, singular: bool) -> None:
    assert compile_path(path)[1] is singular


def test_fast_lookup_follows_dicts_and_lists_only() -> None:
    _, _, lookup = compile_path("$.a[1].b")
    assert lookup({"a": [{"b": 1}, {"b": 2}]}) == 2
    assert lookup({"a": [{"b": 1}]}) is MISSING
    assert lookup({"a": "xyz"}) is MISSING
    assert lookup({"a": {"1": {"b": 3}}}) is MISSING
    assert lookup({"a": [None, {"b": None}]}) is None
    assert lookup([1]) is MISSING


def test_other_paths_return_all_matches() -> None:
    _, singular, lookup = compile_path("$.accounts[?(@.balance > 0)].id")
    matches = lookup({"accounts": [{"id": "A", "balance": 5}, {"id": "B", "balance": 0}, {"id": "C", "balance": 1}]})
    assert not singular and isinstance(matches, Matches) and matches == ["A", "C"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "0", "x y"]), inner,
                                                                  max_size=3),
    max_leaves=12,
)


def path_of(steps: list[Any]) -> str:
    return "$" + "".join("[*]" if s == "*" else f"[{s}]" if isinstance(s, int) else f"['{s}']" for s in steps)


singular_paths = st.lists(st.sampled_from(["a", "b", "0", "x y", 0, 1]), max_size=3).map(path_of)
wildcard_paths = st.lists(st.sampled_from(["a", "b", "x y", 0, 1, "*"]), min_size=1, max_size=4).filter(
    lambda steps: "*" in steps).map(path_of)


def jsonpath_ng_values(path: str, document: Any) -> list[Any]:
    return [m.value for m in parse_jsonpath(path).find(document)]


@settings(max_examples=300, deadline=None)
@given(json_values, singular_paths)
def test_fast_lookup_agrees_with_jsonpath_ng(document: Any, path: str) -> None:
    _, singular, lookup = compile_path(path)
    got = lookup(document)
    assert singular
    assert ([] if got is MISSING else [got]) == jsonpath_ng_values(path, document)


@settings(max_examples=300, deadline=None)
@given(json_values, wildcard_paths)
def test_fan_out_lookup_agrees_with_jsonpath_ng(document: Any, path: str) -> None:
    _, singular, lookup = compile_path(path)
    assert not singular
    assert lookup.__qualname__.startswith("_fan_out_lookup")
    assert lookup(document) == jsonpath_ng_values(path, document)


def test_wildcard_paths_skip_jsonpath_ng() -> None:
    for path in ("$.accounts[*].id", "$.*", "$.a.*.b"):
        assert compile_path(path)[2].__qualname__.startswith("_fan_out_lookup"), path
    assert compile_path("$..id")[2].__qualname__.startswith("_expression_lookup")
