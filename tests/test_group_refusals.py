"""Group level: malformed records, sign-off reasons, provenance refusals (nbdiag.group.pipeline)."""

from __future__ import annotations

import copy
import json

import pytest

from nbdiag.group import pipeline as group
from nbdiag.core.errors import EXIT_USAGE
from nbdiag.outputs.manifest import make_manifest, manifest_path

GOOD = {"run": {"prefix": "sub-01_task-t_run-01", "subject": "01"}, "variant": "base", "status": "pass",
        "findings": [], "contrasts": {"c": {"estimable": True}}, "design": {}, "settings": {}}


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.update(run="x"), "'run' must be an object with a string 'prefix'"),
    (lambda r: r.update(variant=3), "'variant' must be a string; found int"),
    (lambda r: r.update(status="ok"), "'status' must be one of pass, warn, fail, error"),
    (lambda r: r.update(findings=["x"]), "'findings' must be a list of objects"),
    (lambda r: r.update(contrasts={"c": 1}), "'contrasts' must be an object of objects"),
    (lambda r: r.update(diagnostics=[1]), "'diagnostics' must be an object"),
    (lambda r: r.update(_unreadable="cannot be read as a JSON object (ValueError)"),
     "cannot be read as a JSON object (ValueError)"),
])
def test_record_shape_problem(change, problem):
    rec = copy.deepcopy(GOOD)
    assert group.record_shape_problem(rec) is None
    change(rec)
    assert group.record_shape_problem(rec) == problem


def test_signoff_reasons():
    err = {**GOOD, "status": "error", "error": {"message": "events file not found"}}
    assert group._fails_signoff(err, "fail") == (True, ["error: events file not found"])
    assert group._fails_signoff({**GOOD, "status": "error"}, "fail") == \
        (True, ["error: the run could not be audited"])
    # a fail status with no fail-level finding still names why
    assert group._fails_signoff({**GOOD, "status": "fail"}, "fail") == (True, ["status fail"])
    rec = {**GOOD, "status": "warn", "findings": [
        "junk", {"code": "odd", "severity": "catastrophic"}, {"code": "vif", "severity": "warn", "contrast": "c"},
        {"code": "vif", "severity": "warn", "contrast": "c"}, {"code": "info_only", "severity": "info"}]}
    assert group._fails_signoff(rec, "warn") == (True, ["vif (c)"])
    assert group._fails_signoff(rec, "fail") == (False, [])


def test_non_object_record_is_an_error_row(tmp_path):
    folder = tmp_path / "sub-01" / "func"
    folder.mkdir(parents=True)
    (folder / "sub-01_task-t_run-01_desc-base_nbdiag.json").write_text("[1, 2]")
    (rec,) = group.collect_records(tmp_path)
    assert rec["status"] == "error" and rec["variant"] == "base"
    assert rec["run"]["prefix"] == "sub-01_task-t_run-01" and rec["run"]["run"] == "01"
    assert rec["error"]["message"] == "could not read the record: expected a JSON object, found list"
    assert rec["_path"] == "sub-01/func/sub-01_task-t_run-01_desc-base_nbdiag.json"


def test_output_dir_is_a_file(tmp_path, capsys):
    path = tmp_path / "out.txt"
    path.write_text("x")
    assert group.run_group(path, report=False) == EXIT_USAGE
    assert f"OUTPUT_DIR {path} is a file" in capsys.readouterr().err


def _write(tmp_path, rec, name):
    folder = tmp_path / "sub-01" / "func"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(rec))


def test_check_records_refuses_without_provenance_or_other_hash(tmp_path):
    prefixes = ["sub-01_task-t_run-01", "sub-01_task-t_run-02", "sub-01_task-t_run-03", "sub-01_task-t_run-04"]
    expected = [{"prefix": p, "variant": "base", "record": f"{p}_desc-base_nbdiag.json"} for p in prefixes]
    path = manifest_path(tmp_path, "01")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(make_manifest(subject="01", expected=expected, skipped=None,
                                             variants={"base": "h1"})))
    recs = [{**GOOD, "run": {"prefix": prefixes[0], "subject": "01"}},
            {**GOOD, "run": {"prefix": prefixes[1], "subject": "01"}, "provenance": {"settings_hash": "old",
                                                                                  "inputs": {}}},
            {**GOOD, "run": {"prefix": prefixes[3], "subject": "01"}, "provenance": {"settings_hash": "h1"}},
            {**GOOD, "run": {"prefix": prefixes[2], "subject": "01"}, "provenance": {"settings_hash": "h1",
                                                                                  "inputs": {}}},
            {**GOOD, "run": {"prefix": "sub-01_task-t_run-09", "subject": "01"}}]
    for r in recs:
        _write(tmp_path, r, f"{r['run']['prefix']}_desc-base_nbdiag.json")
    check = group.check_records(group.collect_records(tmp_path), tmp_path)
    reasons = {r["prefix"]: r["reason"] for r in check["refused"]}
    assert reasons[prefixes[0]].startswith("record has no provenance")
    assert reasons[prefixes[1]] == "from another settings hash (old; the latest participant run used h1)"
    assert reasons[prefixes[3]] == ("partial or malformed record: provenance.inputs: missing "
                                    "(Provenance requires 'inputs')")
    assert [r["run"]["prefix"] for r in check["trusted"]] == [prefixes[2]]
    assert [s["prefix"] for s in check["stale"]] == ["sub-01_task-t_run-09"]
