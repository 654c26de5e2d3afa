"""Shortcuts taken for speed (issue 16) give what the long way gives.

Each test runs the shortcut and the code it replaces on the same input: nibabel's
``nib.load`` for image headers, nilearn's duplicate-event groupby, nilearn's
``expression_to_contrast_vector``, and the events reads of the pre-run checks.
"""

from __future__ import annotations

import os
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.contrasts import expression_to_contrast_vector
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag import taskpart
from nbdiag.config import ModelSettings
from nbdiag.contrasts import parse_contrasts
from nbdiag.design import build_design, frame_times
from nbdiag.inputs.bids import _load_header, read_n_scans


def _save(cls, path, n_vols=7, tr=1.5, units=("mm", "sec")):
    img = cls(np.zeros((2, 2, 2, n_vols), np.float32), np.eye(4))
    img.header.set_zooms((2.0, 2.0, 2.0, tr))
    img.header.set_xyzt_units(*units)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("cls, name", [(nib.Nifti1Image, "a.nii.gz"), (nib.Nifti1Image, "b.nii"),
                                       (nib.Nifti2Image, "c.nii.gz"), (nib.Nifti1Pair, "d.img")])
def test_image_header_equals_nib_load(tmp_path, cls, name):
    path = _save(cls, tmp_path / name, units=("mm", "msec"))
    got, ref = _load_header(path), nib.load(str(path)).header
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
