"""A new user's first commands: fast --help, exit 2 when nothing matched with what was found,
one message per contrast typo naming the renames applied, a demo that says what comes next."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbdiag.cli import main, survey_dataset
from nbdiag.demo.run import CONFIG

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_nilearn_nor_matplotlib(flag):
    code = ("import sys, runpy\n"
            f"sys.argv = ['nbdiag', {flag!r}]\n"
            "try:\n    runpy.run_module('nbdiag', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
            "heavy = [m for m in ('nilearn', 'matplotlib', 'pandas', 'scipy', 'sklearn', 'nibabel') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr
    assert ("usage: nbdiag" in done.stdout) if flag == "--help" else done.stdout.startswith("nbdiag ")


def test_help_is_fast():
    # without the coverage measurement the suite may add to subprocesses (it is not what users run)
    env = {k: v for k, v in _env().items() if not k.startswith(("COV_CORE", "COVERAGE"))}
    best = 1e9
    for _ in range(5):  # best of five: the machine is shared
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nbdiag", "--help"], capture_output=True, env=env, timeout=60,
                              check=False)
        best = min(best, time.perf_counter() - start)
        assert done.returncode == 0
    assert best <= 0.3, f"nbdiag --help took {best:.2f} s"


def test_wrong_task_exits_2_and_lists_what_was_found(demo_bids, tmp_path, capsys):
    code = main([str(demo_bids), str(tmp_path / "out"), "participant", "--task", "nbak", "--space",
                 "MNI152NLin6Asym", "--derivatives", "derivatives/fmriprep", "--no-reports"])
    err = capsys.readouterr().err
    assert code == 2  # nothing matched: nothing was audited
    assert "no run found for task 'nbak'" in err
    assert "tasks found (--task): nback" in err
    assert "spaces found (--space): MNI152NLin6Asym" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "sub-01").exists()


def test_default_derivatives_folder_points_to_fmriprep(demo_bids, tmp_path, capsys):
    code = main([str(demo_bids), str(tmp_path / "out"), "participant", "--task", "nback", "--no-reports"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no sub-* folders" in err
    assert "try --derivatives derivatives/fmriprep" in err


def test_survey_of_a_missing_folder_is_empty(tmp_path):
    assert survey_dataset(tmp_path / "nowhere", "derivatives") == ""
    (tmp_path / "derivatives").mkdir()
    assert survey_dataset(tmp_path, "derivatives") == ""  # nothing to list


def test_contrast_typo_reported_once_with_the_rename(demo_bids, tmp_path, capsys):
    code = main([str(demo_bids), str(tmp_path / "out"), "participant", "--config", str(CONFIG), "--no-reports",
                 "--contrast", "0BACK", "--contrast", "zero_bak - two_back"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip().startswith("contrast ")]
    assert len(lines) == 2, err  # one per typo, not one per variant
    zero = next(line for line in lines if "'0BACK'" in line)
    assert "'0BACK' is renamed to 'zero_back' by [events] rename" in zero
    assert "(variants nortdur, rtdur, compcor)" in zero
    assert "did you mean 'zero_back'?" in next(line for line in lines if "zero_bak" in line)


def _outside_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_outside", ROOT / ".ci" / "readme_outside.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_marks_quick_start_tutorial_and_signoff_for_the_outside_run():
    """.ci/run runs these blocks after ``pip install .`` from a temporary folder (no PYTHONPATH)."""
    script = _outside_script()
    found = script.blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    codes = [code for _, _, _, code in found]
    assert any(code.strip() == "nbdiag demo" for code in codes)  # the quick start
    assert any("nbdiag.demo.data_path()" in code and "print(" in code for code in codes)  # tutorial snippet
    signoff = next(code for what, arg, _, code in found if arg == "exit 3")
    assert "group --ratings sub-01_ratings_AB.json" in signoff
    assert ("file", "sub-01_ratings_AB.json") in {(what, arg) for what, arg, _, _ in found}
    assert "nbdiag/demo/data" not in "".join(codes)  # no checkout path
    assert "readme_outside.py" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_outside_script_tolerates_only_the_stated_exit_code(tmp_path):
    script = _outside_script()
    ok = subprocess.run(["bash", "-c", script.tolerant("X=1\n(exit 3)\n(exit 0)\n", 3)], check=False)
    bad = subprocess.run(["bash", "-c", script.tolerant("(exit 3)\n(exit 1)\ntouch never\n", 3)], cwd=tmp_path,
                         check=False)
    assert ok.returncode == 0 and bad.returncode == 1 and not (tmp_path / "never").exists()


def test_demo_names_its_data_and_the_next_commands(tmp_path):
    import nbdiag.demo
    from nbdiag.demo.run import next_steps

    data = nbdiag.demo.data_path()
    assert data.is_absolute() and (data / "dataset_description.json").is_file()
    assert (nbdiag.demo.config_path()).is_file()
    (tmp_path / "sub-02.html").write_text("")
    lines = "\n".join(next_steps(data, tmp_path))
    assert f"Data audited: {data}" in lines
    assert f"nbdiag {data} {tmp_path} group --ratings sub-02_ratings_AB.json" in lines
    assert str(tmp_path / "group.html") in lines
