"""The typed run summary (nbdiag.record.types): round trip, schema consistency, and its use.

``RunSummary`` replaced ``RunAudit.slim``, ``pipeline._summary`` and the ``--work-dir`` stub:
every record of the demo survives ``from_json(to_json(...))`` unchanged, every field it writes
is a field of docs/record.schema.json with a matching type (a field renamed in the type fails
here), and the participant level's summaries and stubs are built from it.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from jsonschema import Draft202012Validator

from nbdiag.record.types import ContrastSummary, FindingSummary, RunSummary
from record_schema import SCHEMA_PATH

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _records(demo_output):
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(demo_output.rglob("*_nbdiag.json"))]


def _without_required(node):
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


def _resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].split("/")[-1]]
    return node


def _declared(node, key):
    """The schema of property ``key`` under ``node`` (following $ref and anyOf), or None."""
    node = _resolve(node)
    for option in node.get("anyOf", [node]):
        option = _resolve(option)
        if key in option.get("properties", {}):
            return option["properties"][key]
        extra = option.get("additionalProperties")
        if isinstance(extra, dict):
            return extra
    return None


def _undeclared(value, node, path=""):
    """Paths of keys in ``value`` that the schema does not declare at that place."""
    out = []
    if isinstance(value, dict):
        for key, sub in value.items():
            child = _declared(node, key)
            if child is None:
                out.append(f"{path}/{key}")
            else:
                out += _undeclared(sub, child, f"{path}/{key}")
    elif isinstance(value, list):
        items = _resolve(node).get("items")
        if items is not None:
            for i, sub in enumerate(value):
                out += _undeclared(sub, items, f"{path}/{i}")
    return out


def test_every_demo_record_round_trips(demo_output):
    records = _records(demo_output)
    assert len(records) >= 10
    for record in records:
        summary = RunSummary.from_json(record)
        assert RunSummary.from_json(summary.to_json()) == summary
        assert summary.to_json() == RunSummary.from_json(summary.to_json()).to_json()
        assert summary.variant == record["variant"] and summary.status == record["status"]
        assert [f.code for f in summary.findings] == [f["code"] for f in record["findings"]]
        assert set(summary.contrasts) == set(record["contrasts"])
        for name, c in summary.contrasts.items():
            assert c.findings == tuple(record["contrasts"][name].get("findings") or ())
            assert c.variance == record["contrasts"][name].get("variance")


def test_summaries_name_only_fields_of_the_record_schema(demo_output):
    relaxed = Draft202012Validator(_without_required(SCHEMA))
    stub = RunSummary.stub({"prefix": "sub-01_task-x_run-1", "subject": "01"}, "base", "error")
    for data in [RunSummary.from_json(r).to_json() for r in _records(demo_output)] + [stub.to_json()]:
        data.pop("_on_disk", None)  # in memory only, never written
        errors = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in relaxed.iter_errors(data)]
        assert errors == []
        assert _undeclared(data, SCHEMA) == []


def test_a_renamed_field_fails_the_schema_check():
    summary = RunSummary(run={"prefix": "p"}, variant="v", status="pass",
                         findings=(FindingSummary("drift_overlap", "warn", "t", "m", "c"),),
                         contrasts={"c": ContrastSummary(True, 0.5, 2.0, 1.1, ("drift_overlap",))})
    good = summary.to_json()
    assert _undeclared(good, SCHEMA) == []
    for path in (("findings", 0), ("contrasts", "c")):
        bad = copy.deepcopy(good)
        target = bad[path[0]][path[1]]
        target["severity_level" if path[0] == "findings" else "cvif_value"] = target.pop(
            "severity" if path[0] == "findings" else "cvif")
        assert _undeclared(bad, SCHEMA) != []
    renamed = copy.deepcopy(good)
    renamed["state"] = renamed.pop("status")
    assert _undeclared(renamed, SCHEMA) == ["/state"]


def test_types_are_frozen_and_stub_says_where_the_record_is():
    stub = RunSummary.stub({"prefix": "p"}, "v", "error")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stub.status = "pass"  # type: ignore[misc]
    assert stub.on_disk and "--work-dir" in stub.error["message"]
    assert RunSummary.from_json(stub.to_json()) == stub
    assert RunSummary.stub({"prefix": "p"}, "v", "warn").error is None
    odd = RunSummary.from_json({"run": None, "variant": "v", "status": "pass", "design": "not an object",
                                "contrasts": {"c": {"estimable": 1, "variance": "n/a"}, "x": 3},
                                "findings": [{"code": "a", "severity": "info"}, "junk"], "error": "text"})
    assert odd.run == {} and odd.contrasts == {"c": ContrastSummary(estimable=True)} and odd.error is None
    assert [f.code for f in odd.findings] == ["a"] and odd.nilearn_warnings == ()


def test_participant_level_keeps_run_summaries(demo_output, demo_bids, tmp_path):
    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG
    from nbdiag.participant.pipeline import run_participant

    result = run_participant(demo_bids, tmp_path / "out", load_config(CONFIG), reports=False,
                             participant_labels=["01"], log=lambda line: None)
    assert result.audits
    for audit in result.audits:
        assert audit.design is None
        assert isinstance(audit.record, RunSummary)  # only a summary is kept
        assert RunSummary.from_json(audit.record.to_json()) == audit.record
