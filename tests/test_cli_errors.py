"""Command-line error paths and options, run in-process (exit codes and one-line messages)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag import cli
from nbdiag.cli import main
from nbdiag.core.errors import EXIT_BUG, EXIT_OK, EXIT_USAGE


@pytest.mark.parametrize("argv, message", [
    (["--n-jobs", "0"], "argument --n-jobs: expected a positive number of jobs, or -1 for all cores; got 0"),
    (["--n-jobs", "two"], "argument --n-jobs: expected an integer; got 'two'"),
    (["--t-r", "nan"], "argument --t-r: expected a finite number; got 'nan'"),
    (["--high-pass", "fast"], "argument --high-pass: expected a number; got 'fast'"),
    (["--variant", "a"], "--variant and --ratings apply to the group level"),
    (["--confounds-n-compcor", "many"], "invalid value for 'confounds_n_compcor': expected an integer; got 'many'"),
    (["--confounds-motion", "huge"], "invalid value for 'confounds_motion': expected one of"),
])
def test_participant_usage_errors(tmp_path, capsys, argv, message):
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *argv])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_demo_usage_error(capsys):
    assert main(["demo", "--n-jobs", "0"]) == EXIT_USAGE
    assert "nbdiag demo: error: argument --n-jobs" in capsys.readouterr().err


def test_internal_error_writes_crash_log(monkeypatch, tmp_path, capsys):
    def boom(args):
        raise ZeroDivisionError("synthetic bug")

    monkeypatch.setattr(cli, "_participant", boom)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code = main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant"])
    err = capsys.readouterr().err
    assert code == EXIT_BUG
    m = re.search(r"internal error \(a bug in nbdiag: ZeroDivisionError\); traceback written to (\S+);", err)
    assert m, err
    log = Path(m.group(1)).read_text()
    assert f"argv: {[str(tmp_path / 'bids'), str(tmp_path / 'out'), 'participant']}" in log
    assert "ZeroDivisionError: synthetic bug" in log


def test_keyboard_interrupt_exit_130(monkeypatch, tmp_path, capsys):
    def stop(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_participant", stop)
    assert main([str(tmp_path), str(tmp_path / "out"), "participant"]) == 130
    assert capsys.readouterr().err.strip() == "nbdiag: interrupted"


def test_library_warning_is_one_line(monkeypatch, tmp_path, capsys):
    import warnings

    def warn(args):
        warnings.warn("something\n   odd   happened", UserWarning)
        return EXIT_OK

    monkeypatch.setattr(cli, "_participant", warn)
    assert main([str(tmp_path), str(tmp_path / "out"), "participant"]) == EXIT_OK
    assert capsys.readouterr().err == "nbdiag: warning (UserWarning): something odd happened\n"


def _saved_design(tmp_path):
    t_r, n = 2.0, 60
    events = pd.DataFrame({"onset": [10.0, 40.0, 70.0], "duration": 10.0, "trial_type": ["a", "b", "a"]})
    design = make_first_level_design_matrix(np.arange(n) * t_r, events, drift_model="cosine", high_pass=0.01)
    path = tmp_path / "sub-01_task-x_design.tsv"
    design.to_csv(path, sep="\t", index=False)
    return design, path


def test_design_command_report_config_and_bad_contrast(tmp_path, capsys):
    design, path = _saved_design(tmp_path)
    cfg = tmp_path / "t.toml"
    cfg.write_text("[thresholds]\n")
    report = tmp_path / "design.html"
    code = main(["design", str(path), "--t-r", "2", "--high-pass", "0.01", "--contrast", "a - b",
                 "--config", str(cfg), "--report", str(report)])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert f"  report: {report}" in out and report.read_text().lstrip().lower().startswith("<!doctype html")
    X = design.to_numpy()
    c = np.zeros(X.shape[1])
    c[list(design.columns).index("a")], c[list(design.columns).index("b")] = 1, -1
    variance = c @ np.linalg.pinv(X.T @ X) @ c
    assert f"contrast a - b: estimable=True variance={variance:.4g}" in out
    assert main(["design", str(path), "--t-r", "2", "--contrast", "a - nope"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("nbdiag: error: ") and "nope" in err and "design.tsv" in err
