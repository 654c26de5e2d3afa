"""Shortcuts taken for speed (issue 16) give what the long way gives.

Each test runs the shortcut and the code it replaces on the same input: nibabel's
``nib.load`` for image headers, nilearn's duplicate-event groupby, nilearn's
``expression_to_contrast_vector``, and the events reads of the pre-run checks.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.contrasts import expression_to_contrast_vector
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag.design import taskpart
from nbdiag.config import ModelSettings
from nbdiag.design.contrasts import parse_contrasts
from nbdiag.design.matrix import build_design, frame_times
from nbdiag.inputs.bids import _load_header, read_n_scans


def _save(cls, path, n_vols=7, tr=1.5, units=("mm", "sec")):
    img = cls(np.zeros((2, 2, 2, n_vols), np.float32), np.eye(4))
    img.header.set_zooms((2.0, 2.0, 2.0, tr))
    img.header.set_xyzt_units(*units)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("cls, name", [(nib.Nifti1Image, "a.nii.gz"), (nib.Nifti1Image, "b.nii"),
                                       (nib.Nifti2Image, "c.nii.gz"), (nib.Nifti1Pair, "d.img")])
def test_image_header_equals_nib_load(tmp_path, cls, name, monkeypatch):
    path = _save(cls, tmp_path / name, units=("mm", "msec"))
    ref = nib.load(str(path)).header
    if cls is nib.Nifti1Image:  # a single-file NIfTI-1 is read without nib.load
        import nbdiag.inputs.bids as bids_mod

        monkeypatch.setattr(bids_mod.nib, "load", lambda *a, **k: pytest.fail("nib.load was called"))
    got = _load_header(path)
    assert type(got) is type(ref)
    assert got.get_data_shape() == ref.get_data_shape() == (2, 2, 2, 7)
    assert got.get_zooms() == ref.get_zooms()
    assert got.get_xyzt_units() == ref.get_xyzt_units() == ("mm", "msec")


def test_image_header_reread_when_the_file_changes(tmp_path):
    path = _save(nib.Nifti1Image, tmp_path / "bold.nii.gz", n_vols=7)
    assert read_n_scans(path, None).value == 7
    _save(nib.Nifti1Image, path, n_vols=9)
    os.utime(path, ns=(1, 1))  # another modification time as well as another size
    assert read_n_scans(path, None).value == 9


def test_damaged_header_still_named_by_nib_load(tmp_path):
    path = tmp_path / "bold.nii"
    path.write_bytes(b"\0" * 400)
    with pytest.raises(Exception):
        nib.load(str(path))
    with pytest.raises(Exception):
        _load_header(path)


def _design(events):
    taskpart.clear_cache()
    times = frame_times(60, 2.0, 0.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        expected = make_first_level_design_matrix(times, events, "glover", "cosine", 0.01)
    built = build_design(events, None, 60, 2.0, 0.0, ModelSettings(task_label="t", high_pass=0.01))
    return built, expected, [str(w.message).strip() for w in record]


@pytest.mark.parametrize("case", ["no duplicates", "duplicate", "missing trial type"])
def test_duplicate_event_shortcut_equals_nilearn(case):
    events = pd.DataFrame({"onset": [0.0, 10.0, 20.0, 30.0, 40.0], "duration": [5.0, 5.0, 5.0, 0.0, 5.0],
                           "trial_type": ["a", "b", "a", "b", "a"], "modulation": [1.0, 2.0, 0.5, 1.0, 1.5]})
    if case == "duplicate":
        events.loc[2, ["onset", "duration"]] = [0.0, 5.0]  # same a-event twice: nilearn sums and warns
    if case == "missing trial type":
        events.loc[1, "trial_type"] = None  # nilearn's groupby drops the row
    assert taskpart._no_duplicates(events) is (case == "no duplicates")
    built, expected, messages = _design(events)
    assert list(built.design.columns) == list(expected.columns)
    np.testing.assert_allclose(built.design.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-10)
    warned = any("Duplicated events" in m for m in built.warnings)
    assert warned is any("Duplicated events" in m for m in messages)  # nilearn's warning, whenever nilearn gives it
    assert warned is (case != "no duplicates")  # (a dropped row shortens the table: nilearn warns then too)


def test_memoised_contrast_vectors_equal_nilearn_and_are_not_shared():
    columns = ["a", "b", "c", "drift_1", "constant"]
    design = pd.DataFrame(np.eye(5), columns=columns)
    roles = {"a": "task", "b": "task", "c": "task", "drift_1": "drift", "constant": "constant"}
    contrasts = {"ab": "a - b", "mix": "0.5*a + 0.5*c - b"}
    first = parse_contrasts(contrasts, design, roles)
    for name, expr in contrasts.items():
        np.testing.assert_array_equal(first.vectors[name], expression_to_contrast_vector(expr, columns))
    first.vectors["ab"][:] = 99.0  # a caller changing its copy does not change the next parse
    again = parse_contrasts(contrasts, design, roles)
    np.testing.assert_array_equal(again.vectors["ab"], [1.0, -1.0, 0.0, 0.0, 0.0])
    bad = parse_contrasts({"x": "a - nope"}, design, roles)
    assert not bad.vectors and bad.findings[0].code == "contrast_invalid"


@pytest.mark.parametrize("offset", [0.0, 1e15])
def test_demean_equals_nilearn_demean_confounds(offset):
    """nilearn's _demean_confounds(confounds, None) (scikit-learn's scale): same bits, same warning."""
    from nilearn.interfaces.fmriprep.load_confounds_utils import _demean_confounds

    from nbdiag.inputs.fmriprep import _demean_all

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, 4)) * [1.0, 1e-3, 50.0, 1.0] + offset, columns=list("abcd"))
    frame.iloc[0, 1] = np.nan  # a NaN the means ignore
    frame["e"] = np.arange(200)  # an integer column
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = _demean_all(frame.copy())
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        expected = _demean_confounds(frame.copy(), None)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


@pytest.mark.parametrize("sessions", [False, True])
def test_bids_file_query_equals_nilearn(tmp_path, sessions):
    """The discovery's file query (dataset-wide globs once per discovery) lists what nilearn's
    get_bids_files lists, for subject, session, subject-level and root-level files."""
    from nilearn.interfaces.bids.query import get_bids_files

    from nbdiag.inputs.bids import _bids_files

    names = []
    for sub in ("01", "02", "10"):
        for ses in (("a", "b") if sessions else (None,)):
            for run in ("1", "2"):
                folder = tmp_path / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
                stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + f"_task-nback_run-{run}"
                names += [folder / f"{stem}_events.tsv", folder / f"{stem}_bold.json"]
        names.append(tmp_path / f"sub-{sub}" / "func" / f"sub-{sub}_task-nback_events.tsv")  # subject level
    names += [tmp_path / "task-nback_events.tsv", tmp_path / "task-other_events.tsv"]
    for name in names:
        name.parent.mkdir(parents=True, exist_ok=True)
        name.write_text("onset\tduration\n")
    memo: dict = {}
    queries = [dict(modality_folder="func", file_tag="events", file_type="tsv", sub_label="01",
                    filters=[("task", "nback"), ("run", "2")]),
               dict(modality_folder="func", file_tag="events", file_type="tsv", sub_label="10", filters=None),
               dict(modality_folder="func", file_tag="bold", file_type="json", filters=[("task", "nback")]),
               dict(file_tag="events", file_type="tsv", filters=[("task", "nback")], sub_folder=False),
               dict(file_tag="events", file_type="tsv", sub_folder=False)]
    for _ in range(2):  # the second round is answered from the memo
        for query in queries:
            expected = get_bids_files(tmp_path, **query)
            assert expected, query
            assert _bids_files(tmp_path, memo=memo, **query) == expected, query
    assert any(k[0] == "sessions" for k in memo) and any(k[0] == "root" for k in memo)


@pytest.mark.parametrize("present", [["timeseries"], ["regressors"], [], ["timeseries", "short"], ["dir"]])
def test_confounds_file_lookup_equals_nilearn(tmp_path, present):
    """One folder listing instead of a stat per candidate: the file nilearn's _get_file_name picks,
    its "more than one" error, and nothing when it finds nothing."""
    from nilearn.interfaces.fmriprep.load_confounds_utils import _get_file_name

    from nbdiag.core.compat import confounds_file_for

    bold = tmp_path / "sub-01_ses-a_task-nback_run-1_space-MNI_res-2_desc-preproc_bold.nii.gz"
    bold.write_bytes(b"")
    names = {"timeseries": "sub-01_ses-a_task-nback_run-1_desc-confounds_timeseries.tsv",
             "regressors": "sub-01_ses-a_task-nback_run-1_desc-confounds_regressors.tsv",
             "short": "sub-01_task-nback_desc-confounds_timeseries.tsv",
             "dir": "sub-01_ses-a_task-nback_run-1_desc-confounds_timeseries.tsv"}
    for key in present:
        if key == "dir":
            (tmp_path / names[key]).mkdir()  # a folder with the name is not a file
        else:
            (tmp_path / names[key]).write_text("a\n1\n")
    try:
        expected = Path(_get_file_name(str(bold)))
    except ValueError as exc:
        expected = exc
    if isinstance(expected, ValueError) and "more than one" in str(expected).lower():
        with pytest.raises(ValueError, match="more than one") as got:
            confounds_file_for(bold, "unused")
        assert str(got.value) == str(expected)
    elif isinstance(expected, ValueError):
        assert confounds_file_for(bold, "unused") is None
    else:
        assert confounds_file_for(bold, "unused") == expected


@pytest.mark.parametrize("path, roots, inside", [
    ("/a/b/c", ["/a/b"], True), ("/a/bc", ["/a/b"], False), ("/a/b", ["/a/b"], True),
    ("/x/y", ["/"], True), ("/a/z", ["/b", "/a"], True), ("/ab", ["/a"], False)])
def test_within_roots_prefix_test_equals_parents_test(path, roots, inside):
    from nbdiag.inputs.safety import _within

    by_parents = any(Path(path) == Path(r) or Path(r) in Path(path).parents for r in roots)
    assert _within(Path(path), [Path(r) for r in roots]) is inside is by_parents


def test_pre_run_checks_stop_reading_events_once_every_named_type_is_seen(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import nbdiag.participant.preflight as preflight

    runs = []
    for i, types in enumerate((["0BACK", "2BACK"], ["0BACK", "2BACK"], ["0BACK", "cue"])):
        path = tmp_path / f"run{i}_events.tsv"
        pd.DataFrame({"onset": [0.0, 5.0], "duration": [1.0, 1.0], "trial_type": types}).to_csv(
            path, sep="\t", index=False)
        runs.append(SimpleNamespace(events=path))
    reads = []
    original = preflight.pd.read_csv
    monkeypatch.setattr(preflight.pd, "read_csv", lambda p, *a, **k: reads.append(p) or original(p, *a, **k))
    types, _ = preflight._events_facts(runs, {"0BACK", "2BACK"}, set())
    assert reads == [runs[0].events] and types == {"0BACK", "2BACK"}
    reads.clear()
    types, columns = preflight._events_facts(runs, {"0BACK", "fixation"}, {"response_time"})
    assert reads == [r.events for r in runs]  # a name no file has: every file is read for the message
    assert types == {"0BACK", "2BACK", "cue"} and columns == {"onset", "duration", "trial_type"}
