"""One test per wrapper in nbdiag.core.compat, against nilearn's public behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import nilearn
import numpy as np
import pandas as pd
import pytest

from nbdiag.core import compat

ROOT = Path(__file__).resolve().parents[1]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def test_supported_range_is_stated_once_and_holds_for_the_installed_nilearn():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"nilearn{compat.SUPPORTED_NILEARN}"' in pyproject
    low, high = re.findall(r"[\d.]+", compat.SUPPORTED_NILEARN)
    assert _version(low) <= _version(nilearn.__version__) < _version(high)


def test_nilearn_version_reads_the_installed_release():
    assert compat.nilearn_version() == _version(nilearn.__version__)[:2]


def test_load_confounds_defaults_are_what_first_level_from_bids_passes():
    """nilearn's public contract: first_level_from_bids documents its confounds_* defaults per
    release (0.12: fd 0.2 / dvars 3; 0.13+: fd 0.5 / dvars 1.5)."""
    import inspect

    from nilearn.glm.first_level import first_level_from_bids
    from nilearn.interfaces.fmriprep import load_confounds

    got = compat.load_confounds_defaults({"fallback": True})
    assert "fallback" not in got
    params = inspect.signature(load_confounds).parameters
    assert set(got) <= set(params)  # every key is a load_confounds keyword
    expected = (0.5, 1.5) if compat.nilearn_version() >= (0, 13) else (0.2, 3)
    assert (got["fd_threshold"], got["std_dvars_threshold"]) == expected
    doc = first_level_from_bids.__doc__ or ""
    assert "confounds_" in doc or "kwargs" in doc


def test_load_confounds_defaults_falls_back_when_the_helper_is_gone(monkeypatch):
    import nilearn.glm.first_level.first_level as fl

    monkeypatch.delattr(fl, "_check_kwargs_load_confounds")
    fallback = {"fd_threshold": 9.0}
    got = compat.load_confounds_defaults(fallback)
    assert got == fallback and got is not fallback


def _fmriprep_run(tmp_path: Path, n: int = 5) -> Path:
    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    bold = func / "sub-01_task-x_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    bold.write_bytes(b"")
    pd.DataFrame({"trans_x": np.zeros(n)}).to_csv(
        func / "sub-01_task-x_run-1_desc-confounds_timeseries.tsv", sep="\t", index=False)
    return bold


def test_confounds_file_for_is_the_file_load_confounds_reads(tmp_path):
    bold = _fmriprep_run(tmp_path)
    found = compat.confounds_file_for(bold, fallback_stem="sub-01_task-x_run-1")
    assert found == bold.parent / "sub-01_task-x_run-1_desc-confounds_timeseries.tsv"
    # no confounds file: None (nilearn raises "Could not find")
    other = bold.parent / "sub-02_task-x_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    assert compat.confounds_file_for(other, fallback_stem="sub-02_task-x_run-1") is None
    # two candidates: nilearn's "more than one" ValueError goes through
    pd.DataFrame({"a": [0]}).to_csv(bold.parent / "sub-01_task-x_run-1_desc-confounds_regressors.tsv",
                                    sep="\t", index=False)
    with pytest.raises(ValueError, match="more than one"):
        compat.confounds_file_for(bold, fallback_stem="sub-01_task-x_run-1")


def test_confounds_file_for_fallback_without_the_helper(tmp_path, monkeypatch):
    import nilearn.interfaces.fmriprep.load_confounds_utils as lcu

    bold = _fmriprep_run(tmp_path)
    monkeypatch.delattr(lcu, "_get_file_name")
    found = compat.confounds_file_for(bold, fallback_stem="sub-01_task-x_run-1")
    assert found == bold.parent / "sub-01_task-x_run-1_desc-confounds_timeseries.tsv"
    assert compat.confounds_file_for(bold, fallback_stem="sub-09_task-x") is None


def test_create_cosine_drift_is_the_basis_in_nilearns_design_matrix():
    """Public behaviour: make_first_level_design_matrix's drift_k columns (and the constant)."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    ft = np.arange(120) * 2.0
    dm = make_first_level_design_matrix(ft, None, drift_model="cosine", high_pass=0.01)
    basis = compat.create_cosine_drift(0.01, ft)
    drift_cols = [c for c in dm.columns if c.startswith("drift_")]
    assert basis.shape == (120, len(drift_cols) + 1)
    np.testing.assert_array_equal(basis[:, :-1], dm[drift_cols].to_numpy())
    np.testing.assert_array_equal(basis[:, -1], 1.0)


def test_dct_cosines_equal_nilearns_basis_bit_for_bit():
    from nbdiag.diagnostics.drift import dct_cosines, nilearn_cosine_basis

    ft = np.arange(200) * 0.8
    basis = compat.create_cosine_drift(1 / 128.0, ft)[:, :-1]
    assert np.array_equal(nilearn_cosine_basis(200, 0.8, 1 / 128.0), basis)
    assert np.array_equal(dct_cosines(200, basis.shape[1]), basis)
    assert dct_cosines(10, 0).shape == (10, 0)


def test_no_private_nilearn_import_outside_compat():
    """Every ``from nilearn... import _private`` and release switch lives in nbdiag/core/compat.py."""
    offenders = []
    for path in sorted((ROOT / "nbdiag").rglob("*.py")):
        if path.name == "compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"from (nilearn[\w.]*) import \(?\s*([^\n)]*)", text):
            names = [n.strip().split(" as ")[0] for n in m.group(2).split(",")]
            if any(n.startswith("_") for n in names if n) or any(p.startswith("_") for p in m.group(1).split(".")):
                offenders.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
        if re.search(r"from nilearn import __version__|nilearn\.__version__\s*[<>=]", text):
            offenders.append(f"{path.relative_to(ROOT)}: version switch on nilearn.__version__")
    assert offenders == []


def test_hrf_internals_are_the_pieces_of_compute_regressor():
    from nilearn.glm.first_level import compute_regressor, glover_hrf, spm_hrf

    nl = compat.hrf_internals()
    assert nl is not None  # present across the supported range
    np.testing.assert_array_equal(nl.hrf_kernel("glover", 2.0, 50, None)[0], glover_hrf(2.0, 50))
    np.testing.assert_array_equal(nl.hrf_kernel("spm", 2.0, 50, None)[0], spm_hrf(2.0, 50))
    ft = np.arange(40) * 2.0
    cond = np.array([[4.0, 30.0], [2.0, 2.0], [1.0, 1.0]])
    regs, names = compute_regressor(cond, "glover + derivative", ft, con_id="a")
    assert nl.regressor_names("a", "glover + derivative") == names
    assert nl.n_frames_high_res(ft, 0.0, 50) > 50 * (ft[-1] - ft[0]) / 2.0
    np.testing.assert_allclose(nl.orthogonalize(regs.copy())[:, 0], regs[:, 0])
