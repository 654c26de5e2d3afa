"""--ratings in MRIQC rating-widget and AFNI APQC shapes (issue 23), merged into signoff.tsv."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nbdiag.group.pipeline import run_group
from nbdiag.group.ratings import APQC_MAPPING, MRIQC_MAPPING, RatingsError, load_ratings

KNOWN = {("sub-01_ses-1_task-nback_run-01", "nortdur"), ("sub-01_ses-1_task-nback_run-01", "rtdur"),
         ("sub-01_ses-1_task-nback_run-02", "nortdur"), ("sub-02_ses-1_task-nback_run-01", "nortdur"),
         ("sub-03_ses-1_task-nback_run-01", "nortdur")}


def _mriqc(path: Path, subject: str, rating, **extra) -> Path:
    # the JSON nireports' rating widget downloads ({dataset}_{subject}.json)
    path.write_text(json.dumps({"dataset": "ds000001", "subject": subject, "rating": rating,
                                "artifacts": extra.pop("artifacts", []), "time_sec": 42.1, **extra}))
    return path


def _apqc(path: Path, rows) -> Path:
    # the apqc_*.json AFNI's APQC page saves: [qcele, rating, comment] rows after a header
    path.write_text(json.dumps([["qcele", "rating", "comment"], *rows]))
    return path


@pytest.mark.parametrize("value, confidence, expected, label", [
    ("1.2", None, "exclude", "Exclude"), ("1.49", "3.5", "exclude", "Exclude"), ("1.5", None, "unsure", "Poor"),
    ("2.45", "3.5", "unsure", "Poor"), ("2.5", "3.5", "include", "Acceptable"), (3.9, "3.5", "include", "Excellent"),
    ("3.2", "1.0", "unsure", "Acceptable")])
def test_mriqc_widget_mapping(tmp_path, value, confidence, expected, label):
    extra = {} if confidence is None else {"confidence": confidence}
    path = _mriqc(tmp_path / "ds000001_sub-01_ses-1_task-nback_run-01_bold.json",
                  "sub-01_ses-1_task-nback_run-01_bold", value, artifacts=["head-motion"], comments="ghost", **extra)
    out = load_ratings([path], KNOWN)
    assert set(out) == {("sub-01_ses-1_task-nback_run-01", "nortdur"), ("sub-01_ses-1_task-nback_run-01", "rtdur")}
    row = out[("sub-01_ses-1_task-nback_run-01", "nortdur")]
    assert row["rating"] == expected and row["source"] == "mriqc" and row["mapping"] == MRIQC_MAPPING
    assert row["original"].startswith(f"{float(value):g} ({label}")
    assert row["comment"] == "ghost; artifacts: head-motion"


def test_mriqc_anatomical_rating_applies_to_every_run_of_the_subject(tmp_path):
    out = load_ratings([_mriqc(tmp_path / "a.json", "sub-01_T1w", "1.0")], KNOWN)
    assert sorted(out) == [("sub-01_ses-1_task-nback_run-01", "nortdur"), ("sub-01_ses-1_task-nback_run-01", "rtdur"),
                           ("sub-01_ses-1_task-nback_run-02", "nortdur")]
    assert {r["rating"] for r in out.values()} == {"exclude"}


@pytest.mark.parametrize("rows, expected", [
    ([["vepi", "good", "null"], ["ve2a", "good", "fine"]], "include"),
    ([["vepi", "good", "null"], ["mot6", "other", "jumpy"]], "unsure"),
    ([["vepi", "good", "null"], ["mot6", "other", "null"], ["regps", "bad", "null"]], "exclude"),
    ([["vepi", "bad", "null"], ["FINAL", "good", "overall fine"]], "include"),
])
def test_afni_apqc_mapping(tmp_path, rows, expected):
    out = load_ratings([_apqc(tmp_path / "apqc_sub-02.json", rows)], KNOWN)
    assert list(out) == [("sub-02_ses-1_task-nback_run-01", "nortdur")]
    row = out[("sub-02_ses-1_task-nback_run-01", "nortdur")]
    assert row["rating"] == expected and row["source"] == "afni_apqc" and row["mapping"] == APQC_MAPPING
    assert row["original"] == "; ".join(f"{q}: {r}" for q, r, _ in rows if r != "null")


def test_unrated_apqc_is_no_rating_and_bad_files_are_named(tmp_path):
    assert load_ratings([_apqc(tmp_path / "apqc_02.json", [["vepi", "null", "null"]])], KNOWN) == {}
    cases = [
        (_apqc(tmp_path / "apqc.json", [["vepi", "good", "null"]]), "names no subject"),
        (_apqc(tmp_path / "apqc_sub-09.json", [["vepi", "good", "null"]]), "sub-09, which has no run"),
        (_apqc(tmp_path / "apqc_sub-01.json", [["vepi", "great", "null"]]), "must be good, bad, other or null"),
        (_apqc(tmp_path / "apqc_sub-03.json", ["vepi"]), "row 1 must be [qcele, rating, comment]"),
        (_mriqc(tmp_path / "m1.json", "sub-01_ses-1_task-nback_run-01_bold", "great"), "must be a number"),
        (_mriqc(tmp_path / "m2.json", "sub-01_ses-1_task-nback_run-01_bold", 5), "found 5"),
        (_mriqc(tmp_path / "m3.json", "sub-07_task-nback_bold", 3), "matches no run"),
    ]
    for path, needle in cases:
        with pytest.raises(RatingsError) as exc:
            load_ratings([path], KNOWN)
        assert str(path) in str(exc.value) and needle in str(exc.value), str(exc.value)


def test_mriqc_and_afni_ratings_merged_into_signoff_tsv(tmp_path):
    from test_group import _dataset
    from report_examples import example_run

    base, _ = example_run("01", "nortdur")
    out = _dataset(tmp_path / "out", base, {"01": "pass", "02": "pass", "03": "fail"})
    prefix = {s: f"sub-{s}_ses-1_task-nback_run-01" for s in ("01", "02", "03")}
    files = [
        _mriqc(tmp_path / "ds_sub-01.json", prefix["01"] + "_bold", "1.3", comments="severe motion"),
        _apqc(tmp_path / "apqc_sub-02.json", [["vepi", "good", "null"], ["mot6", "other", "check"]]),
        tmp_path / "nbdiag.json",
    ]
    files[2].write_text(json.dumps({"nbdiag_ratings": 1, "subject": "03", "reviewer": "AB", "ratings": [
        {"run": prefix["03"], "variant": "nortdur", "rating": "include", "comment": "ok"}]}))
    code = run_group(out, "fail", report=False, ratings=files)
    so = pd.read_csv(out / "group" / "signoff.tsv", sep="\t", dtype=str, keep_default_na=False).set_index("subject")
    assert list(so.columns)[-3:] == ["rating_source", "rating_original", "rating_mapping"]
    assert list(so.columns)[:15] == ["session", "run", "variant", "status", "reasons", "warnings", "signoff", "task",
                                     "acq", "prefix", "fail_on", "reviewer", "rating", "comment", "final"]
    assert so.loc["01", ["rating", "final", "rating_source", "rating_original"]].tolist() == [
        "exclude", "fail", "mriqc", "1.3 (Exclude)"]
    assert so.loc["01", "rating_mapping"] == MRIQC_MAPPING
    assert so.loc["02", ["rating", "final", "rating_source", "rating_original"]].tolist() == [
        "unsure", "pass", "afni_apqc", "vepi: good; mot6: other"]
    assert so.loc["02", "comment"] == "mot6: check"
    assert so.loc["03", ["rating", "final", "rating_source", "rating_original", "rating_mapping"]].tolist() == [
        "include", "pass", "nbdiag", "include", "as rated"]
    assert code == 3  # sub-01 excluded by its MRIQC rating


def test_odd_but_valid_values(tmp_path):
    # a confidence the widget left unreadable is ignored; an empty APQC rating counts as not rated
    path = _mriqc(tmp_path / "m.json", "sub-03_ses-1_task-nback_run-01_bold", "3", confidence="n/a")
    assert load_ratings([path], KNOWN)[("sub-03_ses-1_task-nback_run-01", "nortdur")]["rating"] == "include"
    out = load_ratings([_apqc(tmp_path / "apqc_sub-03.json", [["vepi", "", None], ["ve2a", "bad", "x"]])], KNOWN)
    assert out[("sub-03_ses-1_task-nback_run-01", "nortdur")]["original"] == "ve2a: bad"
