"""fMRIPrep confounds reading: size limits, unreadable files, sidecars, NaN rows (nbdiag.inputs.fmriprep)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdiag.config import UNSET, ModelSettings
from nbdiag.core.errors import InputError
from nbdiag.inputs.fmriprep import load_run_confounds, raw_signals, read_raw_confounds
from nbdiag.core.limits import Limits

N = 6


def _func(tmp_path: Path) -> tuple[Path, Path]:
    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    bold = func / "sub-01_task-t_space-MNI_desc-preproc_bold.nii.gz"
    bold.write_bytes(b"")
    return bold, func / "sub-01_task-t_desc-confounds_timeseries.tsv"


def _table(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    cols = {c: rng.normal(size=n) for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")}
    cols["global_signal"] = np.arange(n, dtype=float)
    return pd.DataFrame(cols)


def test_read_raw_confounds_limits_and_errors(tmp_path):
    path = tmp_path / "c.tsv"
    _table().to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError) as exc:
        read_raw_confounds(path, Limits(max_confound_columns=3))
    assert exc.value.code == "input_too_large" and exc.value.found == "7 columns"
    assert "[limits] max_confound_columns" in str(exc.value)
    with pytest.raises(InputError) as exc:
        read_raw_confounds(path, Limits(max_scans=4))
    assert exc.value.code == "input_too_large" and exc.value.found == "more than 4 rows"
    assert len(read_raw_confounds(path, Limits(max_scans=N))) == N

    with pytest.raises(InputError) as exc:
        read_raw_confounds(tmp_path / "missing.tsv")
    assert exc.value.code == "confounds_invalid" and "cannot read confounds file (FileNotFoundError)" in str(exc.value)
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"cannot read confounds file as TSV \(EmptyDataError\)"):
        read_raw_confounds(empty)
    header_only = tmp_path / "header.tsv"
    header_only.write_text("trans_x\ttrans_y\n")
    with pytest.raises(InputError) as exc:
        read_raw_confounds(header_only)
    assert exc.value.found == "0 rows" and "confounds file has no rows" in str(exc.value)


def test_raw_signals_numeric_columns_only():
    sig = raw_signals(pd.DataFrame({"global_signal": ["1", "x"], "csf": [1.0, 2.0], "trans_x": [0, 0],
                                    "dvars": [1.0, 1.0]}))
    # issue 20: motion columns are kept too (their footprint in the global signal is measured)
    assert set(sig) == {"global_signal", "csf", "trans_x"}
    assert sig["global_signal"][0] == 1.0 and np.isnan(sig["global_signal"][1])


def test_no_confounds_file_but_strategy_asks(tmp_path):
    bold, _ = _func(tmp_path)
    with pytest.raises(InputError) as exc:
        load_run_confounds(bold, None, ModelSettings(confounds_strategy=("motion",)), N)
    assert exc.value.code == "input_missing" and "confounds_strategy ['motion'] asks for one" in str(exc.value)
    assert exc.value.file.endswith("sub-01_task-t_desc-confounds_timeseries.tsv")
    assert load_run_confounds(bold, None, ModelSettings(confounds_strategy=None), N).confounds is None


def test_compcor_without_sidecar_and_bad_sidecar(tmp_path):
    bold, tsv = _func(tmp_path)
    _table().to_csv(tsv, sep="\t", index=False)
    compcor = ModelSettings(confounds_strategy=("compcor", "high_pass"))
    with pytest.raises(InputError) as exc:
        load_run_confounds(bold, tsv, compcor, N)
    assert exc.value.code == "input_missing" and "confounds JSON sidecar missing" in str(exc.value)
    assert exc.value.file.endswith("desc-confounds_timeseries.json")

    sidecar = tsv.with_suffix(".json")
    sidecar.write_text("[1, 2]")
    # motion only: a JSON that is not an object is noted, not fatal (nilearn only json.loads it)
    res = load_run_confounds(bold, tsv, ModelSettings(confounds_strategy=("motion",),
                                                      confounds={"motion": "basic"}), N)
    assert any(w.startswith("confounds JSON sidecar not used: ") and "found a JSON list" in w for w in res.warnings)
    assert sorted(res.confounds.columns) == ["rot_x", "rot_y", "rot_z", "trans_x", "trans_y", "trans_z"]
    # a JSON syntax error stops nilearn for any strategy
    sidecar.write_text("{")
    with pytest.raises(InputError) as exc:
        load_run_confounds(bold, tsv, ModelSettings(confounds_strategy=("motion",)), N)
    assert exc.value.code == "confounds_invalid" and "not valid JSON" in str(exc.value)


def test_whole_file_rows_mismatch_and_nan(tmp_path):
    bold, tsv = _func(tmp_path)
    table = _table()
    table.loc[0, "trans_x"] = np.nan  # nilearn fills first-row NaNs (>= 0.13) ...
    table.to_csv(tsv, sep="\t", index=False, na_rep="n/a")
    whole = ModelSettings(confounds_strategy=UNSET)
    with pytest.raises(InputError) as exc:
        load_run_confounds(bold, tsv, whole, N + 2)
    assert exc.value.code == "n_scans_mismatch" and (exc.value.expected, exc.value.found) == ("8 rows", "6 rows")
    table.loc[3, "rot_y"] = np.nan  # ... but not later ones
    table.to_csv(tsv, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError) as exc:
        load_run_confounds(bold, tsv, whole, N)
    assert (exc.value.column, exc.value.row, exc.value.found) == ("rot_y", 5, "nan")  # TSV line 5


def test_missing_strategy_columns_refused_by_nilearn(tmp_path):
    bold, tsv = _func(tmp_path)
    _table().drop(columns=["rot_z"]).to_csv(tsv, sep="\t", index=False)
    with pytest.raises(InputError) as exc:
        load_run_confounds(bold, tsv, ModelSettings(confounds_strategy=("motion",)), N)
    assert exc.value.code == "confounds_invalid" and "nilearn's load_confounds refused this file" in str(exc.value)
    assert exc.value.found == "6 columns"
