"""Small foundation modules: limits, ratings, safety, manifest, JSON conversion, output folder, package.

Each test checks a value or a message (naming file / key / expected / found) computed by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdiag
from nbdiag.outputs import manifest
from nbdiag.core.jsonio import jsonable
from nbdiag.core.errors import InputError, SettingsError
from nbdiag.inputs import safety
from nbdiag.core.limits import Limits, too_large
from nbdiag.outputs.files import atomic_write_text, check_output_dir
from nbdiag.group.ratings import RatingsError, final_signoff, load_ratings


# --------------------------------------------------------------------------- limits
def test_limits_updated_applies_and_keeps_defaults():
    lim = Limits().updated({"max_scans": 50})
    assert lim.to_dict() == {"max_confound_columns": 2000, "max_event_rows": 100_000, "max_scans": 50}


@pytest.mark.parametrize("values, needle", [
    ([1, 2], "expected a table of limits; got list"),
    ({"max_rows": 3}, "unknown key 'max_rows'; allowed keys: max_confound_columns, max_event_rows, max_scans"),
    ({"max_scans": 0}, "invalid value for 'max_scans': expected an integer >= 1; got 0"),
    ({"max_scans": True}, "invalid value for 'max_scans': expected an integer >= 1; got True"),
    ({"max_event_rows": 2.5}, "invalid value for 'max_event_rows': expected an integer >= 1; got 2.5"),
])
def test_limits_updated_refuses_bad_values(values, needle):
    with pytest.raises(SettingsError) as exc:
        Limits().updated(values, where="cfg.toml [limits]")
    assert str(exc.value) == f"cfg.toml [limits]: {needle}"


def test_too_large_message_names_key_and_numbers():
    msg = too_large("events.tsv rows", 12, 10, "max_event_rows")
    assert msg == ("events.tsv rows: 12 is above the limit of 10 ([limits] max_event_rows); raise it in the "
                   "config if this is intended")


# --------------------------------------------------------------------------- ratings
KNOWN = {("sub-01_task-nback_run-01", "base"), ("sub-01_task-nback_run-02", "base")}


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_ratings_merge_most_conservative_and_join_comments(tmp_path):
    a = _write(tmp_path / "a.json", {"reviewer": "AB", "ratings": [
        {"run": "sub-01_task-nback_run-01", "variant": "base", "rating": "include", "comment": "ok\tfine"},
        {"run": "sub-01_task-nback_run-02", "variant": "base"}]})  # rating defaults to unsure
    b = _write(tmp_path / "b.json", {"reviewer": "CD", "ratings": [
        {"run": "sub-01_task-nback_run-01", "variant": "base", "rating": "exclude", "comment": "cue\ngaps"}]})
    c = _write(tmp_path / "c.json", {"ratings": [
        {"run": "sub-01_task-nback_run-01", "variant": "base", "rating": "unsure", "comment": "anon"}]})
    out = load_ratings([a, b, c], KNOWN)
    assert out[("sub-01_task-nback_run-01", "base")] == {
        "reviewer": "AB; CD", "rating": "exclude", "comment": "AB: ok fine | CD: cue gaps | anon"}
    assert out[("sub-01_task-nback_run-02", "base")] == {"reviewer": "AB", "rating": "unsure", "comment": ""}


@pytest.mark.parametrize("content, needle", [
    ("{not json", "is not JSON"),
    (json.dumps([1, 2]), "expected an object with a 'ratings' list (as saved by a subject report), found list"),
    (json.dumps({"ratings": {}}), "found dict"),
    (json.dumps({"ratings": [{"run": "x"}]}), "ratings[0] needs 'run' and 'variant'; found {'run': 'x'}"),
    (json.dumps({"ratings": [{"run": "sub-01_task-nback_run-01", "variant": "base", "rating": "maybe"}]}),
     "ratings[0].rating must be one of ('exclude', 'unsure', 'include'); found 'maybe'"),
])
def test_ratings_bad_files_named(tmp_path, content, needle):
    path = _write(tmp_path / "r.json", content)
    with pytest.raises(RatingsError) as exc:
        load_ratings([path], KNOWN)
    assert str(path) in str(exc.value) and needle in str(exc.value)


def test_ratings_missing_file_and_unknown_runs(tmp_path):
    with pytest.raises(RatingsError, match=r"--ratings: cannot read .*nope\.json"):
        load_ratings([tmp_path / "nope.json"], KNOWN)
    path = _write(tmp_path / "r.json", {"ratings": [
        {"run": "sub-09_task-nback_run-01", "variant": "base", "rating": "include"},
        {"run": "sub-01_task-nback_run-01", "variant": "other", "rating": "include"}]})
    with pytest.raises(RatingsError) as exc:
        load_ratings([path], KNOWN)
    assert str(exc.value) == ("--ratings: rating(s) for run × variant(s) not in OUTPUT_DIR: "
                              "sub-09_task-nback_run-01 [base] (in r.json); "
                              "sub-01_task-nback_run-01 [other] (in r.json)")


@pytest.mark.parametrize("rating, expected", [("include", "pass"), ("exclude", "fail"),
                                              ("unsure", "review"), (None, "review")])
def test_final_signoff(rating, expected):
    assert final_signoff("review", rating) == expected


# --------------------------------------------------------------------------- safety
def test_check_input_file_errors(tmp_path):
    roots = safety.allowed_roots(tmp_path / "bids", tmp_path / "deriv")
    (tmp_path / "bids").mkdir()
    (tmp_path / "deriv").mkdir()
    assert roots == ((tmp_path / "bids").resolve(), (tmp_path / "deriv").resolve())

    missing = tmp_path / "bids" / "events.tsv"
    with pytest.raises(InputError) as exc:
        safety.check_input_file(missing, "events file", "the run's model", roots)
    assert exc.value.code == "input_missing" and exc.value.found == "no file"
    assert "events file not found (asked for by the run's model)" in str(exc.value)

    broken = tmp_path / "bids" / "broken.tsv"
    broken.symlink_to(tmp_path / "bids" / "elsewhere.tsv")
    with pytest.raises(InputError) as exc:
        safety.check_input_file(broken, "events file", "x", roots)
    assert exc.value.found == "a broken symlink"

    annex = tmp_path / "bids" / "annexed.tsv"
    annex.symlink_to("../.git/annex/objects/ab/cd/SHA256E-s1--x/SHA256E-s1--x")
    assert safety.is_unfetched_annex(annex) and not safety.is_unfetched_annex(missing)
    with pytest.raises(InputError) as exc:
        safety.check_input_file(annex, "confounds file", "confounds_strategy ['motion']", roots)
    assert "unfetched git-annex/DataLad file" in str(exc.value) and "datalad get" in str(exc.value)
    assert exc.value.found == "a broken link into .git/annex"

    loop = tmp_path / "bids" / "loop.tsv"
    loop.symlink_to(loop)
    with pytest.raises(InputError) as exc:
        safety.check_input_file(loop, "events file", "x", roots)
    assert exc.value.found == "a symlink loop"

    outside = tmp_path / "secret.tsv"
    outside.write_text("a\n")
    link = tmp_path / "bids" / "link.tsv"
    link.symlink_to(outside)
    with pytest.raises(InputError) as exc:
        safety.check_input_file(link, "events file", "x", roots)
    assert exc.value.code == "input_outside" and exc.value.found == "a link pointing outside it"
    # Not checked without roots
    assert safety.check_input_file(link, "events file", "x", None) == link

    folder = tmp_path / "bids" / "folder.tsv"
    folder.mkdir()
    with pytest.raises(InputError) as exc:
        safety.check_input_file(folder, "events file", "x", roots, code="input_invalid")
    assert exc.value.code == "input_invalid" and exc.value.found == "a folder"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_check_input_file_unreadable(tmp_path):
    path = tmp_path / "events.tsv"
    path.write_text("onset\n")
    path.chmod(0)
    try:
        with pytest.raises(InputError) as exc:
            safety.check_input_file(path, "events file", "x", (tmp_path.resolve(),))
        assert exc.value.found == "permission denied"
    finally:
        path.chmod(0o644)


def test_display_relative_and_outside(tmp_path):
    assert safety.display(tmp_path / "a" / "b.json", tmp_path) == os.path.join("a", "b.json")
    assert safety.display("/elsewhere/b.json", tmp_path) == "/elsewhere/b.json"


@pytest.mark.parametrize("raw, needle", [
    (b"\xef\xbb\xbf{}", "starts with a UTF-8 byte-order mark (BOM)"),
    (b"  \n", "empty file (expected a JSON object)"),
    (b"\xff\xfe{}", "not UTF-8 text (expected a JSON object)"),
    (b'{"a": 1,\n "b": }', "not valid JSON (line 2, column"),
    (b"[1, 2]", "expected a JSON object, found a JSON list"),
])
def test_read_json_object_problems(tmp_path, raw, needle):
    path = tmp_path / "bold.json"
    path.write_bytes(raw)
    data, problem = safety.read_json_object(path, (tmp_path.resolve(),))
    assert data is None
    assert problem.startswith(str(path)) and needle in problem


def test_read_json_object_ok_and_missing(tmp_path):
    path = tmp_path / "bold.json"
    path.write_text('{"RepetitionTime": 2}')
    assert safety.read_json_object(path) == ({"RepetitionTime": 2}, None)
    data, problem = safety.read_json_object(tmp_path / "none.json")
    assert data is None and "JSON sidecar not found" in problem and "no file" in problem


@pytest.mark.parametrize("data, expected", [
    ({}, (None, None)),
    ({"RepetitionTime": 2}, (2.0, None)),
    ({"RepetitionTime": True}, (None, "f.json: RepetitionTime must be a number of seconds; found a bool")),
    ({"RepetitionTime": "2.0s"}, (None, "f.json: RepetitionTime must be a number of seconds; found a str (2.0s)")),
    ({"RepetitionTime": -1}, (None, "f.json: RepetitionTime must be a finite number > 0; found -1")),
    ({"RepetitionTime": float("nan")}, (None, "f.json: RepetitionTime must be a finite number > 0; found nan")),
    ({"RepetitionTime": 2000},
     (None, "f.json: RepetitionTime 2000 s is implausible (milliseconds?); expected seconds, e.g. 0.8")),
])
def test_repetition_time(data, expected):
    assert safety.repetition_time(data, "f.json") == expected


# --------------------------------------------------------------------------- manifest
def test_settings_hash_ignores_subject_selection_only():
    base = {"model": {"hrf_model": "spm", "sub_labels": ["01"], "exclude_subjects": []}}
    other_subjects = {"model": {"hrf_model": "spm", "sub_labels": ["02"], "exclude_subjects": ["03"]}}
    other_model = {"model": {"hrf_model": "glover", "sub_labels": ["01"], "exclude_subjects": []}}
    h = manifest.settings_hash(base)
    assert len(h) == 16 and all(c in "0123456789abcdef" for c in h)
    assert manifest.settings_hash(other_subjects) == h
    assert manifest.settings_hash(other_model) != h


def test_expectations_combines_manifests_and_reports_problems(tmp_path):
    folder = tmp_path / manifest.MANIFEST_DIR
    folder.mkdir(parents=True)
    m1 = manifest.make_manifest(subject="01", skipped=None, variants={"base": "h1"}, expected=[
        {"prefix": "sub-01_task-nback_run-01", "variant": "base", "record": "r.json"}, {"variant": "base"}])
    m2 = manifest.make_manifest(subject="02", skipped="no run for task 'nback'", variants={}, expected=[])
    assert manifest.manifest_path(tmp_path, "01") == folder / "sub-01.json"
    (folder / "sub-01.json").write_text(json.dumps(m1))
    (folder / "sub-02.json").write_text(json.dumps(m2))
    (folder / "sub-03.json").write_text("[]")
    (folder / "sub-04.json").write_text("{broken")
    os.utime(folder / "sub-02.json", ns=(1, 1))
    os.utime(folder / "sub-01.json", ns=(2, 2))
    exp = manifest.expectations(tmp_path)
    assert exp.n_manifests == 2 and exp.subjects == {"01", "02"}
    assert exp.latest_hash == {"base": "h1"}
    assert exp.skipped == {"02": "no run for task 'nback'"}
    assert exp.expected == {("sub-01_task-nback_run-01", "base"): {
        "prefix": "sub-01_task-nback_run-01", "variant": "base", "record": "r.json", "subject": "01",
        "settings_hash": "h1", "manifest": ".nbdiag/manifests/sub-01.json"}}
    assert exp.problems == [
        ".nbdiag/manifests/sub-03.json: unreadable manifest (ValueError); remove it or rerun the participant "
        "level for that subject",
        ".nbdiag/manifests/sub-04.json: unreadable manifest (JSONDecodeError); remove it or rerun the participant "
        "level for that subject",
        ".nbdiag/manifests/sub-01.json: malformed entry in 'expected'",
    ]
    assert manifest.expectations(tmp_path / "nothing").n_manifests == 0


def test_check_input_file_under_a_regular_file(tmp_path):
    parent = tmp_path / "events.tsv"
    parent.write_text("onset\n")
    with pytest.raises(InputError) as exc:
        safety.check_input_file(parent / "child.json", "JSON sidecar", "the run", None)
    assert exc.value.found == "NotADirectoryError"
    assert "JSON sidecar cannot be opened (asked for by the run)" in str(exc.value)


# --------------------------------------------------------------------------- JSON, OUTPUT_DIR, package

class _HasDict:
    def to_dict(self):
        return {"a": np.float32(1.5), 2: np.nan}


def test_jsonable_rules():
    assert jsonable(np.array(3.0)) == 3.0 and jsonable(np.array(np.inf)) is None
    assert jsonable(np.bool_(True)) is True and jsonable(np.int16(4)) == 4
    assert jsonable(np.float32(np.nan)) is None
    assert jsonable(_HasDict()) == {"a": 1.5, "2": None}
    assert jsonable(pd.DataFrame({"x": [1, 2]})) == [{"x": 1}, {"x": 2}]
    assert jsonable(Path("a/b")) == os.path.join("a", "b")
    assert jsonable((1, [np.float64(2.0)])) == [1, [2.0]]


def test_package_lazy_attribute():
    from nbdiag.api import Audit

    assert nbdiag.Audit is Audit
    with pytest.raises(AttributeError, match="module 'nbdiag' has no attribute 'nothing'"):
        nbdiag.nothing  # noqa: B018


def test_check_output_dir_refuses_file_and_readonly(tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is an existing file; expected a folder"):
        check_output_dir(f)
    assert check_output_dir(tmp_path / "new") == (tmp_path / "new").absolute()
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ValueError, match="is not writable"):
                check_output_dir(ro)
        finally:
            ro.chmod(0o700)


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_text("old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
