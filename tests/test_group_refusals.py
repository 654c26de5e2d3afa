"""Group level: malformed records, sign-off reasons, provenance refusals (nbdiag.group.pipeline)."""

from __future__ import annotations

import copy
import json

import pytest

from nbdiag.group import pipeline as group
from nbdiag.core.errors import EXIT_USAGE
from nbdiag.outputs.manifest import make_manifest, manifest_path

from nbdiag.record.model import RunRecord
from report_examples import contrast, finding, minimal_record

GOOD = minimal_record("sub-01_task-t_run-01", "base", contrasts={"c": contrast("c")})


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.update(run="x"), "record.run: expected an object (RunInfo), found str"),
    (lambda r: r.update(variant=3), "record.variant: expected a string, found int 3"),
    (lambda r: r.update(status="ok"), "record.status: 'ok' is none of pass, warn, fail, error"),
    (lambda r: r.update(findings=["x"]), "record.findings[0]: expected an object (FindingRecord), found str"),
    (lambda r: r.update(contrasts={"c": 1}), "record.contrasts.c: expected an object (ContrastEntry), found int"),
    (lambda r: r.update(diagnostics=[1]), "record.diagnostics: list [1] is none of Diagnostics"),
    (lambda r: r.update(nonsense=1), "record: 'nonsense' is no field of RunRecord"),
    (lambda r: r.update(_unreadable="cannot be read as a JSON object (ValueError)"),
     "cannot be read as a JSON object (ValueError)"),
])
def test_record_problem_names_the_field(change, problem):
    rec = copy.deepcopy(GOOD)
    stored, none = group.record_problem(rec)
    assert none is None and stored.record == RunRecord.from_json(GOOD)
    change(rec)
    stored, found = group.record_problem(rec)
    assert stored is None and found.startswith(problem)


def test_signoff_reasons():
    def rec(status, **parts):
        return RunRecord.from_json(minimal_record(status=status, **parts))

    err = rec("error", error={"code": None, "message": "events file not found"})
    assert group._fails_signoff(err, "fail") == (True, ["error: events file not found"])
    assert group._fails_signoff(rec("error"), "fail") == (True, ["error: the run could not be audited"])
    # a fail status with no fail-level finding still names why
    assert group._fails_signoff(rec("fail"), "fail") == (True, ["status fail"])
    warn = rec("warn", findings=[finding("odd", "catastrophic"), finding("vif", "warn", "c"), finding("vif", "warn", "c"),
                                 finding("info_only", "info")])
    assert group._fails_signoff(warn, "warn") == (True, ["vif (c)"])
    assert group._fails_signoff(warn, "fail") == (False, [])


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
    recs = [{**GOOD, "run": {**GOOD["run"], "prefix": prefixes[0]}},
            {**GOOD, "run": {**GOOD["run"], "prefix": prefixes[1]}, "provenance": {"settings_hash": "old",
                                                                                  "inputs": {}}},
            {**GOOD, "run": {**GOOD["run"], "prefix": prefixes[3]}, "provenance": {"settings_hash": "h1"}},
            {**GOOD, "run": {**GOOD["run"], "prefix": prefixes[2]}, "provenance": {"settings_hash": "h1",
                                                                                  "inputs": {}}},
            {**GOOD, "run": {**GOOD["run"], "prefix": "sub-01_task-t_run-09"}}]
    for r in recs:
        _write(tmp_path, r, f"{r['run']['prefix']}_desc-base_nbdiag.json")
    check = group.check_records(group.collect_records(tmp_path), tmp_path)
    reasons = {r["prefix"]: r["reason"] for r in check["refused"]}
    assert reasons[prefixes[0]].startswith("record has no provenance")
    assert reasons[prefixes[1]] == "from another settings hash (old; the latest participant run used h1)"
    assert reasons[prefixes[3]] == ("partial or malformed record: record.provenance.inputs: missing "
                                    "(Provenance requires 'inputs')")
    assert [s.record.run.prefix for s in check["trusted"]] == [prefixes[2]]
    assert [s["prefix"] for s in check["stale"]] == ["sub-01_task-t_run-09"]
