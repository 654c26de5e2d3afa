"""The typed record (nbdiag.record.model): types against the schema, the generic JSON pair, round trips."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from typing import Any

import pytest

from nbdiag.outputs.files import dumps_record
from nbdiag.record import codec
from nbdiag.record.model import (ABSENT, ContrastEntry, Design, FindingRecord, RecordFormatError, RunRecord,
                                 SavedDesignRecord)
from nbdiag.record.types import RunSummary
from record_schema import SCHEMA_PATH, assert_round_trip

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the types against the schema
_ROOT = [SCHEMA]  # the schema whose $defs the walker resolves (schema_problems sets it)


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _ROOT[0]["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _object_nodes(node: Any) -> list[dict]:
    """The object schemas ``node`` allows (through $ref and anyOf/oneOf)."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return []
    out = []
    for key in ("anyOf", "oneOf"):
        for member in node.get(key, []):
            out += _object_nodes(member)
    if "properties" in node or "additionalProperties" in node or node.get("type") == "object" \
            or (isinstance(node.get("type"), list) and "object" in node["type"]):
        out.append(node)
    return out


def _json_types(node: Any) -> set[str]:
    """JSON types a schema node allows (empty: unconstrained)."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return set()
    types: set[str] = set()
    t = node.get("type")
    types |= set(t) if isinstance(t, list) else {t} if t else set()
    for key in ("anyOf", "oneOf"):
        for member in node.get(key, []):
            inner = _json_types(member)
            if not inner:
                return set()
            types |= inner
    for value in node.get("enum", []) + ([node["const"]] if "const" in node else []):
        types.add({str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}[type(value)])
    return types


def _members(tp: Any) -> tuple:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return tuple(m for m in typing.get_args(tp) if m is not codec.Absent)
    return (tp,)


def _hint_types(tp: Any) -> set[str]:
    out: set[str] = set()
    for m in _members(tp):
        origin = typing.get_origin(m)
        if m is Any:
            return set()
        out.add({str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}.get(m) or
                ("array" if origin is tuple else "object"))
    return out


def _compatible(hint: set[str], schema: set[str]) -> bool:
    if not hint or not schema:
        return True
    schema = schema | ({"integer"} if "number" in schema else set())
    return all(t in schema for t in hint - {"null"})


def _walk(classes: list[type], node: dict, where: str, problems: list[str], seen: set) -> None:
    """Check dataclasses sharing one schema object node: properties == fields, required == required fields."""
    key = (tuple(classes), id(node))
    if key in seen:
        return
    seen.add(key)
    props = node.get("properties", {})
    fields = {name: (tp, req) for cls in classes for name, tp, req in codec.field_types(cls)}
    required_everywhere = set.intersection(*({n for n, _, r in codec.field_types(c) if r} for c in classes))
    for name in fields:
        if name not in props:
            problems.append(f"{where}.{name}: field of {'/'.join(c.__name__ for c in classes)} not in the schema")
    for name in props:
        if name not in fields:
            problems.append(f"{where}.{name}: schema property without a field in "
                            f"{'/'.join(c.__name__ for c in classes)}")
    if set(node.get("required", [])) != required_everywhere:
        problems.append(f"{where}: schema requires {sorted(node.get('required', []))}, the types "
                        f"{sorted(required_everywhere)}")
    children: dict[str, list[tuple[Any, Any]]] = {}
    for cls in classes:
        for name, tp, _ in codec.field_types(cls):
            if name in props:
                children.setdefault(name, []).append((tp, props[name]))
    for name, pairs in children.items():
        for tp, prop in pairs:
            if not _compatible(_hint_types(tp), _json_types(prop)):
                problems.append(f"{where}.{name}: type {tp} vs schema {sorted(_json_types(prop))}")
        _descend([tp for tp, _ in pairs], pairs[0][1], f"{where}.{name}", problems, seen)


def _descend(hints: list[Any], prop: Any, where: str, problems: list[str], seen: set) -> None:
    dcs = [m for tp in hints for m in _members(tp) if dataclasses.is_dataclass(m)]
    if dcs:
        nodes = _object_nodes(prop)
        if not nodes:
            problems.append(f"{where}: {dcs[0].__name__} has no object schema")
            return
        _walk(sorted(set(dcs), key=lambda c: c.__name__), nodes[-1], where, problems, seen)
        return
    for tp in hints:
        for m in _members(tp):
            origin, args = typing.get_origin(m), typing.get_args(m)
            if origin is tuple:
                items = [_resolve(n).get("items") for n in [prop] + _object_nodes(prop)
                         if isinstance(_resolve(n), dict) and "items" in _resolve(n)]
                if not items:
                    for n in _resolve(prop).get("anyOf", []) if isinstance(_resolve(prop), dict) else []:
                        if isinstance(_resolve(n), dict) and "items" in _resolve(n):
                            items.append(_resolve(n)["items"])
                if items:
                    _descend([args[0]], items[0], where + "[]", problems, seen)
            elif origin in (Mapping, dict) and any(dataclasses.is_dataclass(x) for x in _members(args[1])):
                extra = [n.get("additionalProperties") for n in _object_nodes(prop)
                         if isinstance(n.get("additionalProperties"), dict)]
                if not extra:
                    problems.append(f"{where}: mapping of {args[1]} has no additionalProperties schema")
                else:
                    _descend([args[1]], extra[0], where + ".*", problems, seen)


def schema_problems(schema: dict) -> list[str]:
    """Every mismatch between the record types and ``schema`` (empty when they agree)."""
    problems: list[str] = []
    _ROOT[0] = schema
    try:
        _walk([RunRecord, SavedDesignRecord], schema, "record", problems, set())
    finally:
        _ROOT[0] = SCHEMA
    return problems


def test_every_field_is_in_the_schema_and_every_schema_property_is_a_field():
    assert schema_problems(SCHEMA) == []


@pytest.mark.parametrize("rename", [("design", "rank", "rank_of_design"), ("contrast", "cvif", "cvif_value"),
                                    ("finding", "severity", "level")])
def test_a_field_renamed_in_the_schema_fails(rename):
    section, old, new = rename
    schema = copy.deepcopy(SCHEMA)
    node = schema["properties"]["design"] if section == "design" else schema["$defs"][section]
    node["properties"][new] = node["properties"].pop(old)
    if old in node.get("required", []):
        node["required"] = [new if r == old else r for r in node["required"]]
    problems = schema_problems(schema)
    assert any(f".{old}: field of" in p for p in problems), problems
    assert any(f".{new}: schema property without a field" in p for p in problems), problems


def test_a_field_renamed_in_the_type_fails_the_schema_check():
    @dataclasses.dataclass(frozen=True)
    class RenamedDesign(Design):
        rank_of_design: int = 0

    assert codec.field_types(RenamedDesign)[-1][0] == "rank_of_design"
    problems: list[str] = []
    _walk([RenamedDesign], _resolve(SCHEMA["properties"]["design"]), "record.design", problems, set())
    assert "record.design.rank_of_design: field of RenamedDesign not in the schema" in problems


# --------------------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def demo_texts(demo_output) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(demo_output.rglob("*_nbdiag.json"))}


def test_every_demo_record_round_trips_byte_for_byte(demo_texts):
    assert len(demo_texts) == 21
    for name, text in demo_texts.items():
        record = assert_round_trip(json.loads(text), name)
        assert isinstance(record, RunRecord)
        assert dumps_record(record.to_json()) == text  # the file, byte for byte
        assert RunRecord.from_json(record.to_json()) == record


def test_typed_record_reads_with_attributes_and_units(demo_texts):
    record = RunRecord.from_json(json.loads(next(iter(demo_texts.values()))))
    assert record.design and record.design.n_columns == len(record.design.columns)
    assert record.design.frame_times[1] - record.design.frame_times[0] == pytest.approx(record.settings.t_r.value)
    drift = record.diagnostics.drift
    assert drift.current_cutoff_s == pytest.approx(1 / record.settings.model["high_pass"])
    entry = next(iter(record.contrasts.values()))
    assert isinstance(entry, ContrastEntry) and entry.sensitivity[0].bias_percent is not ABSENT
    assert all(isinstance(f, FindingRecord) for f in record.findings)
    assert record.provenance and record.provenance.inputs["events"].sha256


def test_summary_is_derived_from_the_typed_record(demo_texts):
    for text in demo_texts.values():
        data = json.loads(text)
        record = RunRecord.from_json(data)
        assert RunSummary.from_record(record) == RunSummary.from_json(data)
        assert RunSummary.of(record) == RunSummary.of(RunSummary.from_record(record))


# --------------------------------------------------------------------------- the generic pair
def _one(demo_texts) -> dict:
    return json.loads(next(iter(demo_texts.values())))


@pytest.mark.parametrize("mutation, message", [
    (lambda r: r["design"].update(colums=[]), "record.design: 'colums' is no field of Design"),
    (lambda r: r["design"].pop("rank"), "record.design.rank: missing (Design requires 'rank')"),
    (lambda r: r["design"]["columns"][2].update(role=3), "record.design.columns[2].role: expected a string"),
    (lambda r: next(iter(r["contrasts"].values()))["sensitivity"][1].update(bias="big"),
     ".sensitivity[1].bias: str 'big' is none of float, NoneType"),
    (lambda r: r["design"].update(frame_times=[0.0, "x"]), "record.design.frame_times[1]: str 'x' is not"),
    (lambda r: r.update(notes="text"), "record.notes: expected a list"),
    (lambda r: r.update(design=[]), "record.design: list [] is none of"),
])
def test_from_json_names_the_path_of_what_does_not_fit(demo_texts, mutation, message):
    data = _one(demo_texts)
    mutation(data)
    with pytest.raises(RecordFormatError) as info:
        RunRecord.from_json(data)
    assert message in str(info.value)


def test_to_json_writes_nan_as_null_keeps_ints_and_leaves_absent_fields_out(demo_texts):
    record = RunRecord.from_json(_one(demo_texts))
    design = dataclasses.replace(record.design, frame_times=(0.0, math.nan, math.inf), tsv=ABSENT)
    out = dataclasses.replace(record, design=design, error=None).to_json()
    assert out["design"]["frame_times"] == [0.0, None, None] and "tsv" not in out["design"]
    assert out["error"] is None and list(out)[-1] == "provenance"
    drift = dataclasses.replace(record.diagnostics.drift, current_cutoff_s=math.nan, recommended_cutoff_s=128)
    section = codec.to_json(drift)
    assert section["current_cutoff_s"] is None and section["recommended_cutoff_s"] == 128
    assert json.dumps(section["recommended_cutoff_s"]) == "128"  # an int stays an int (no 128.0)
    assert codec.to_json({"a": (1.5, math.nan), "b": [{"c": -math.inf}]}) == {"a": [1.5, None], "b": [{"c": None}]}
    with pytest.raises(TypeError, match="cannot write"):
        codec.to_json(object())


def test_records_are_frozen_and_compare_by_value(demo_texts):
    data = _one(demo_texts)
    record = RunRecord.from_json(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "pass"  # type: ignore[misc]
    assert record == RunRecord.from_json(copy.deepcopy(data))
    assert record != dataclasses.replace(record, status="error")
    assert repr(ABSENT) == "ABSENT" and not ABSENT


def test_read_record_tells_saved_design_records_apart(demo_output):
    from nbdiag.record.build import audit_saved_design

    tsv = sorted(demo_output.rglob("*_desc-nortdur_design.tsv"))[0]
    record = audit_saved_design(tsv, contrasts=["zero_back"])[0]
    assert isinstance(record, SavedDesignRecord)   # the typed record, JSON only when written
    data = json.loads(json.dumps(record.to_json()))
    typed = assert_round_trip(data, "saved design")
    assert isinstance(typed, SavedDesignRecord) and typed.design.n_scans == len(typed.design.frame_times)
    with pytest.raises(RecordFormatError, match="RunRecord|RunInfo"):
        RunRecord.from_json(data)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Leaf:
    x: float | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Toy:
    anything: Any
    items: tuple[Any, ...]
    free: Mapping[str, Any]
    leaves: Mapping[str, _Leaf]
    leaf_list: tuple[_Leaf, ...]
    numbers: Mapping[str, float | None]
    either: tuple[str, ...] | Mapping[str, Any] | codec.Absent = codec.ABSENT


def test_the_generic_pair_on_every_kind_of_field():
    data = {"anything": {"a": [1]}, "items": [1, "b"], "free": {"k": [None]}, "leaves": {"p": {"x": 1.5}},
            "leaf_list": [{"x": None}], "numbers": {"a": 2, "b": None}, "either": {"m": 1}}
    toy = codec.from_json(_Toy, data)
    assert toy.items == (1, "b") and toy.leaves["p"] == _Leaf(x=1.5) and toy.leaf_list == (_Leaf(x=None),)
    assert codec.to_json(toy) == data
    assert codec.to_json(dataclasses.replace(toy, either=("s",)))["either"] == ["s"]
    assert "either" not in codec.to_json(dataclasses.replace(toy, either=codec.ABSENT))
    nan = dataclasses.replace(toy, numbers={"a": math.nan}, leaves={"p": _Leaf(x=math.inf)})
    assert codec.to_json(nan)["numbers"] == {"a": None} and codec.to_json(nan)["leaves"] == {"p": {"x": None}}
    from types import MappingProxyType

    assert codec.to_json(MappingProxyType({"a": (1.0,)})) == {"a": [1.0]}
    for key, bad, message in [("items", {}, "toy.items: expected a list"),
                              ("free", [], "toy.free: expected an object"),
                              ("leaves", [], "toy.leaves: expected an object"),
                              ("leaves", {"p": {"x": "s"}}, "toy.leaves.p.x: str 's' is none of"),
                              ("leaf_list", {}, "toy.leaf_list: expected a list"),
                              ("leaf_list", [{"x": 1}, 3], "toy.leaf_list[1]: expected an object (_Leaf)"),
                              ("numbers", [], "toy.numbers: expected an object"),
                              ("numbers", {"a": "1"}, "toy.numbers['a']: str '1' is not")]:
        with pytest.raises(RecordFormatError) as info:
            codec.from_json(_Toy, {**data, key: bad}, "toy")
        assert message in str(info.value), str(info.value)
    with pytest.raises(RecordFormatError, match="<root>: expected an object"):
        codec.from_json(_Toy, [], "")

    @dataclasses.dataclass(frozen=True)
    class Unsupported:
        s: set[str]

    with pytest.raises(TypeError, match="unsupported type"):
        codec.from_json(Unsupported, {"s": []})
    with pytest.raises(TypeError, match="unsupported type"):
        codec.field_types(Unsupported) and codec._accepts(set[str])


def test_non_finite_numbers_are_found_in_every_kind_of_list():
    assert codec._finite_list([1e308, 1e308]) == [1e308, 1e308]  # the sum overflows; the values are finite
    assert codec._finite_list([1.0, math.nan, None]) == [1.0, None, None]
    assert codec._finite_list([1, 2]) == [1, 2] and codec._finite_list(["a", None]) == ["a", None]
    assert codec._finite_list([math.inf, -1.0]) == [None, -1.0]
    assert codec._finite_dict({"a": math.inf, "b": 1}) == {"a": None, "b": 1}


def test_a_built_record_writes_the_json_it_encodes_to(demo_bids):
    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.record.build import audit_run
    from nbdiag.record.model import Provenance

    settings = load_config(CONFIG).all_variants()[0]
    run = discover_runs(demo_bids, settings.model)[0][0]
    prov = Provenance(settings_hash="0" * 16, inputs={})
    record = audit_run(run, settings, provenance=prov).record
    assert isinstance(record, RunRecord) and record.provenance == prov
    kept = record.to_json()
    assert kept is record.to_json() and list(kept)[-1] == "provenance"
    assert dumps_record(codec.to_json(record)) == dumps_record(kept)  # what the builder kept = the encoding
    assert record.design.tsv == f"{run.prefix}_desc-{settings.variant}_design.tsv"
    changed = dataclasses.replace(record, status="error")
    assert changed.to_json()["status"] == "error" and kept["status"] == record.status  # a copy encodes afresh


def test_bold_mode_result_goes_into_the_builder_not_into_a_finished_record(demo_bids, tmp_path):
    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.measure.bold import measure_bold_run
    from nbdiag.record.build import DraftRun, build_record, draft_run

    settings = load_config(CONFIG).all_variants()[0]
    run = discover_runs(demo_bids, settings.model)[0][0]
    draft = draft_run(run, settings)
    assert draft.bold_spec is not None and draft.bold_spec.rows == list(range(len(draft.design)))
    assert set(draft.bold_spec.weights) == set(settings.contrasts) and len(draft.bold_spec.scan_classes) == len(
        draft.design)
    written, results = measure_bold_run([draft], tmp_path)  # the demo's images are header-only: a note
    section, notes = results[settings.variant]
    assert written == [] and section["status"] == "not measured" and notes == [section["note"]]
    record = build_record(draft, bold=results[settings.variant]).record
    assert record.measured.bold.status == "not measured" and record.notes[-1] == section["note"]
    assert "bold" not in draft.parts["measured"]  # the draft was not edited
    errored = DraftRun(run, "broken", {"status": "error"})
    assert measure_bold_run([errored], tmp_path) == ([], {})


def test_record_text_of_long_float_lists_keeps_bits_and_types():
    """Long float lists (frame times) are written with their exact bits: -0.0 is not 0.0, ints stay ints."""
    import json as _json

    times = [0.5 * i for i in range(100)]
    first = dumps_record({"a": {"b": {"frame_times": times}}})
    assert _json.loads(first)["a"]["b"]["frame_times"] == times
    zeros, negative = [0.0] * 64, [-0.0] * 64
    assert dumps_record({"z": zeros}) != dumps_record({"z": negative})  # 0.0 == -0.0, but not the same text
    assert "-0.0" in dumps_record({"z": negative})
    ints = [0] * 64
    assert dumps_record({"z": ints}).count("0.0") == 0  # ints are written as ints
