"""End to end: participant (parallel) then group, as users run it."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from nbdiag.cli import main
from nbdiag.demo.run import CONFIG
from nbdiag.demo.synth import small_spec, write_dataset


def test_participant_then_group(tmp_path, capsys):
    root = write_dataset(tmp_path / "bids", small_spec())
    out = tmp_path / "out"
    code = main([str(root), str(out), "participant", "--config", str(CONFIG), "--space", "MNI152NLin6Asym",
                 "--n-jobs", "2", "--participant-label", "01", "sub-02"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sum(line.startswith("[") for line in err.splitlines()) == 5  # one progress line per run
    assert (out / "dataset_description.json").exists()
    assert (out / "sub-01.html").exists() and (out / "sub-02.html").exists()
    tsvs = sorted(out.rglob("*_design.tsv"))
    assert len(tsvs) == 5 * 3  # runs x variants (nortdur, rtdur, compcor)
    assert any("acq-VARIANTObliquity" in p.name for p in tsvs)
    assert all(p.parent.name == "func" for p in tsvs)

    code = main([str(root), str(out), "group"])
    assert code == 3  # sub-01 ses-1 has unhandled non-steady-state volumes: fails sign-off
    with open(out / "group" / "signoff.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 15
    assert {"subject", "session", "run", "variant", "status", "reasons"} <= set(rows[0])
    failing = [r for r in rows if r["subject"] == "01" and r["session"] == "1" and r["run"] == "01"
               and r["variant"] == "nortdur"][0]
    assert failing["status"] == "fail" and "nonsteady_unhandled" in failing["reasons"]
    assert (out / "group.html").exists()


@pytest.mark.slow
def test_python_dash_m(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nbdiag", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "nbdiag" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "nbdiag", str(tmp_path), str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_verbose_prints_notes_and_top_findings(tmp_path, capsys):
    root = write_dataset(tmp_path / "bids", small_spec())
    args = [str(root), str(tmp_path / "out"), "participant", "--task", "nback", "--space", "MNI152NLin6Asym",
            "--derivatives", "derivatives/fmriprep", "--confounds-strategy", "motion", "non_steady_state",
            "--confounds-motion", "basic", "--participant-label", "01", "--no-reports"]
    assert main(args) == 0
    quiet = capsys.readouterr().err
    assert main(args + ["-v"]) == 0
    loud = capsys.readouterr().err
    assert "nonsteady_unhandled" not in quiet
    assert "default: fail nonsteady_unhandled" in loud  # sub-01 ses-1 run-1 has flagged volumes
