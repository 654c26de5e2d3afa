"""BIDS helpers: n_scans from header or confounds rows, TR from the NIfTI header (units), sidecar notes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from nbdiag.core.errors import InputError
from nbdiag.inputs.bids import _header_t_r, _own_t_r, read_n_scans


def _img(path, shape, zooms=None, unit="sec"):
    img = nib.Nifti1Image(np.zeros(shape, dtype=np.float32), np.eye(4))
    if zooms is not None:
        img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", unit)
    nib.save(img, path)
    return path


def test_read_n_scans_sources(tmp_path):
    bold = _img(tmp_path / "sub-01_bold.nii.gz", (2, 2, 2, 7))
    got = read_n_scans(bold, None)
    assert (got.value, got.source) == (7, "image header (sub-01_bold.nii.gz)")
    conf = tmp_path / "conf.tsv"
    conf.write_text("a\tb\n1\t2\n\n3\t4\n5\t6\n")  # blank line ignored
    flat = _img(tmp_path / "flat.nii.gz", (2, 2, 2))
    got = read_n_scans(flat, conf)
    assert got.value == 3
    assert got.source == "confounds row count (conf.tsv); image is 3D, expected 4D (shape (2, 2, 2))"
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image")
    assert read_n_scans(junk, conf).source.startswith("confounds row count (conf.tsv); image unreadable: ")
    broken = tmp_path / "broken.nii.gz"
    broken.symlink_to(tmp_path / "gone.nii.gz")
    assert read_n_scans(broken, conf).source.endswith("; image not present (broken link)")
    annex = tmp_path / "annex.nii.gz"
    annex.symlink_to(".git/annex/objects/xx/yy/key/key")
    with pytest.raises(InputError) as exc:
        read_n_scans(annex, None)
    assert exc.value.found == "image not present (an unfetched git-annex/DataLad file)"
    assert "and no confounds file to count rows" in exc.value.message


@pytest.mark.parametrize("zoom, unit, expected", [
    (2.0, "sec", (2.0, "")),
    (800.0, "msec", (0.8, "msec")),
    (1_500_000.0, "usec", (1.5, "usec")),
    (2000.0, "sec", (2.0, "2000 with units 'sec': read as ms")),
    (2.5, "unknown", (2.5, "units unknown: read as s")),
    (1.0, "unknown", None),
    (0.0, "sec", None),
])
def test_header_t_r_units(tmp_path, zoom, unit, expected):
    path = _img(tmp_path / "b.nii.gz", (2, 2, 2, 3), zooms=(2.0, 2.0, 2.0, zoom), unit=unit)
    assert _header_t_r(path) == expected


def test_header_t_r_not_4d_or_unreadable(tmp_path):
    assert _header_t_r(_img(tmp_path / "b.nii.gz", (2, 2, 2))) is None
    assert _header_t_r(tmp_path / "missing.nii.gz") is None


def test_own_t_r_notes_bad_sidecar(tmp_path):
    sidecar = tmp_path / "sub-01_bold.json"
    sidecar.write_text('{"RepetitionTime": "2s"}')
    notes: list[str] = []
    assert _own_t_r(sidecar, None, notes) is None
    assert notes == [f"bold sidecar not used: {sidecar}: RepetitionTime must be a number of seconds; found a str (2s)"]
    assert _own_t_r(None) is None and _own_t_r(tmp_path / "none.json") is None
    sidecar.write_text('{"RepetitionTime": 0.8}')
    assert _own_t_r(sidecar) == 0.8
