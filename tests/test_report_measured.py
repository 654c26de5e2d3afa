"""The measured section's glass brain (BOLD mode): read from the folder the caller passes, drawn on a
matplotlib Figure with its own canvas (no pyplot, no backend switch), reproducible bytes."""

from __future__ import annotations

import base64

import matplotlib
import nibabel as nib
import numpy as np

from nbdiag.report.measured import glass_brain_uri, measured_view


def _class_map(path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(9, 11, 9, 2)).astype("float32")
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-18.0, -22.0, -18.0]
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _record(name="maps/c_classes.nii.gz"):
    from report_examples import minimal_record

    from nbdiag.record.model import RunRecord

    return RunRecord.from_json(minimal_record(measured={"bold": {"status": "measured", "contrasts": {"c": {
        "mask_mean": -0.2, "by_class": {"fixation": {"mask_mean": 0.05}, "nonsteady": {"mask_mean": -0.3}},
        "classes_map": name}}}}))


def test_glass_brain_png_reproducible_and_no_backend_switch(tmp_path):
    path = _class_map(tmp_path / "m.nii.gz")
    matplotlib.use("svg")            # whatever the caller chose must survive
    try:
        uri = glass_brain_uri(path, 1, "c: part from non-steady-state volumes (%)")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use("Agg")
    assert uri is not None and uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in png and b"Matplotlib" not in png
    assert glass_brain_uri(path, 1, "c: part from non-steady-state volumes (%)") == uri
    assert glass_brain_uri(tmp_path / "missing.nii.gz", 0, "t") is None


def test_the_map_is_read_from_the_folder_passed(tmp_path):
    (tmp_path / "maps").mkdir()
    _class_map(tmp_path / "maps" / "c_classes.nii.gz")
    view = measured_view(_record(), tmp_path)
    # the class with the largest |mean| is drawn; its label comes from core.labels
    assert view["figure"]["class"] == "non-steady-state volumes" and view["figure"]["uri"].startswith("data:")
    assert [t["label"] for t in view["bold_rows"][0]["top"]] == ["non-steady-state volumes",
                                                                 "fixation / long baseline"]
    assert measured_view(_record(), None)["figure"] is None          # no folder: nothing is read
    assert measured_view(_record(), tmp_path / "elsewhere")["figure"] is None
