"""Outputs (atomic, permissions, layout) and `nbdiag design` on a saved design."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag.cli import main
from nbdiag.design.matrix import infer_roles
from nbdiag.outputs.files import check_output_dir, write_json


def test_write_json_is_atomic_and_readable_by_group(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "a" / "b.json", {"x": 1.5})
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"x": 1.5}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]  # no temp file left behind
    with pytest.raises(ValueError):
        write_json(tmp_path / "nan.json", {"x": float("nan")})  # never writes invalid JSON
    assert not (tmp_path / "nan.json").exists()


def test_atomic_write_replaces_a_dead_process_temp_file_and_cleans_up_on_error(tmp_path, monkeypatch):
    import threading

    from nbdiag.outputs import files as outputs

    target = tmp_path / "r.json"
    stale = tmp_path / f".r.json.{os.getpid()}-{threading.get_ident()}.tmp"
    stale.write_bytes(b"half a record from a killed process with our pid")
    outputs.atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]

    def refuse(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(outputs.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        outputs.atomic_write_bytes(target, b'{"new": 1}')
    assert target.read_bytes() == b"{}" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_output_dir_checks(tmp_path):
    bids = tmp_path / "bids"
    (bids / "derivatives" / "fmriprep").mkdir(parents=True)
    assert check_output_dir(tmp_path / "out", bids) == (tmp_path / "out").absolute()
    assert check_output_dir(bids / "derivatives" / "nbdiag", bids, bids / "derivatives" / "fmriprep")
    for bad in (bids, bids / "sub-01", bids / "derivatives" / "fmriprep" / "x"):
        with pytest.raises(ValueError, match="never writes into its inputs"):
            check_output_dir(bad, bids, bids / "derivatives" / "fmriprep")


def _saved_design(tmp_path):
    t_r, n = 0.8, 300
    frame_times = np.arange(n) * t_r
    onsets = np.arange(6) * 48.0 + 10.0
    events = pd.DataFrame({"onset": onsets, "duration": 30.0,
                           "trial_type": ["zero_back", "two_back"] * 3})
    rng = np.random.default_rng(0)
    motion = rng.standard_normal((n, 2)).cumsum(axis=0) * 0.01
    spike = np.zeros((n, 1))
    spike[0] = 1.0
    design = make_first_level_design_matrix(
        frame_times, events, drift_model="cosine", high_pass=0.01,
        add_regs=np.hstack([motion, spike]), add_reg_names=["trans_x", "rot_z", "non_steady_state_outlier00"])
    path = tmp_path / "sub-01_task-nback_design.tsv"
    design.to_csv(path, sep="\t", index=False)          # as nilearn's save_glm_to_bids writes it
    path.with_suffix(".json").write_text(json.dumps({"RepetitionTime": t_r}))
    return design, path


def test_roles_inferred_from_saved_design(tmp_path):
    design, path = _saved_design(tmp_path)
    roles, _ = infer_roles(pd.read_csv(path, sep="\t"))
    assert roles["zero_back"] == roles["two_back"] == "task"
    assert roles["trans_x"] == roles["rot_z"] == "confound"
    assert roles["non_steady_state_outlier00"] == "spike"
    assert roles["constant"] == "constant"
    assert {c for c, r in roles.items() if r == "drift"} == {c for c in design if c.startswith("drift_")}


def test_design_command_matches_direct_computation(tmp_path, capsys):
    design, path = _saved_design(tmp_path)
    out = tmp_path / "audit.json"
    code = main(["design", str(path), "--contrast", "zero_back", "--contrast", "two_back - zero_back",
                 "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "zero_back" in printed
    record = json.loads(out.read_text())
    X = design.to_numpy()
    c = np.zeros(X.shape[1])
    c[list(design.columns).index("zero_back")] = 1.0
    expected = c @ np.linalg.pinv(X.T @ X) @ c
    assert record["contrasts"]["zero_back"]["variance"] == pytest.approx(expected, rel=1e-8)
    assert record["contrasts"]["zero_back"]["estimable"] is True
    assert record["settings"]["t_r"]["value"] == 0.8


def test_design_command_bad_file(tmp_path, capsys):
    bad = tmp_path / "d.tsv"
    bad.write_text("a\tb\n1\tx\n")
    assert main(["design", str(bad), "--t-r", "2"]) == 1
    err = capsys.readouterr().err
    assert "column 'b'" in err and "row 2" in err and "Traceback" not in err
    assert main(["design", str(tmp_path / "missing.tsv"), "--t-r", "2"]) == 1
    no_tr = tmp_path / "e.tsv"
    no_tr.write_text("a\n1\n2\n")
    assert main(["design", str(no_tr)]) == 1
    assert "repetition time" in capsys.readouterr().err
