"""Issue 16: resume with --work-dir, concurrent shards, Dask and joblib give the same bytes, progress."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nbdiag.cli import main
from nbdiag.config import load_config
from nbdiag.demo.synth import DatasetSpec, EventsRecipe, RunSpec, run_paths, write_dataset
from nbdiag.participant.pipeline import run_participant

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = [f"{i:02d}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def study(tmp_path_factory, forum_toml) -> tuple[Path, Path, DatasetSpec]:
    """8 subjects x 1 run, header-only images, 120 scans at TR 2 s."""
    recipe = EventsRecipe(n_blocks=4, block_s=24.0, trial_s=2.4, instruction_s=4.8,
                          fixation_s=(10.0, 10.0, 10.0, 16.0), first_onset=4.0)
    runs = [RunSpec(s, run=1, n_scans=120, t_r=2.0, image="header", events=recipe,
                    n_nonsteady=2 if i % 3 == 0 else 0) for i, s in enumerate(SUBJECTS)]
    spec = DatasetSpec(runs=runs, seed=16)
    root = write_dataset(tmp_path_factory.mktemp("scale") / "bids", spec)
    config = root.parent / "nbdiag.toml"
    config.write_text(forum_toml(high_pass=0.01, contrasts=("two_back - zero_back",)))
    return root, config, spec


def _outputs(out: Path) -> dict[str, bytes]:
    """Records, design TSVs + sidecars and group TSVs, by relative path."""
    files = {}
    for pattern in ("sub-*/**/*_nbdiag.json", "sub-*/**/*_design.tsv", "sub-*/**/*_design.json",
                    "group/*.tsv", "dataset_description.json"):
        for path in out.glob(pattern):
            files[path.relative_to(out).as_posix()] = path.read_bytes()
    return files


def _records_mtimes(out: Path) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.glob("sub-*/**/*_nbdiag.json")}


def _run(study, out: Path, **kwargs):
    root, config, _ = study
    lines: list[str] = []
    result = run_participant(root, out, load_config(config), reports=False, log=lines.append, **kwargs)
    return result, lines


@pytest.fixture(scope="module")
def reference(study, tmp_path_factory) -> dict[str, bytes]:
    """One process, serial, then the group level."""
    out = tmp_path_factory.mktemp("ref") / "out"
    result, _ = _run(study, out)
    assert result.n_errors == 0 and len(result.audits) == 16
    assert main([str(study[0]), str(out), "group", "--fail-on", "fail"]) in (0, 3)
    return _outputs(out)


# --------------------------------------------------------------------------- resume
def test_resume_redoes_only_the_changed_events_file(study, tmp_path):
    root, _, spec = study
    out, work = tmp_path / "out", tmp_path / "work"
    first, _ = _run(study, out, work_dir=work)
    assert first.n_unchanged == 0 and first.counts and sum(first.counts.values()) == 16
    before = _records_mtimes(out)
    time.sleep(0.01)
    again, lines = _run(study, out, work_dir=work)
    assert again.n_unchanged == 8 and _records_mtimes(out) == before
    assert sum("(unchanged, skipped)" in line for line in lines) == 8
    assert again.counts == first.counts  # statuses come from the cache

    events = run_paths(root, spec, spec.runs[3]).events
    original = events.read_bytes()
    try:
        table = pd.read_csv(events, sep="\t")
        table.loc[1, "onset"] += 1.0
        table.to_csv(events, sep="\t", index=False, na_rep="n/a")
        third, lines = _run(study, out, work_dir=work)
        after = _records_mtimes(out)
        changed = sorted(k for k in after if after[k] != before[k])
        assert third.n_unchanged == 7
        assert changed == [f"sub-04/func/sub-04_task-nback_run-01_desc-{v}_nbdiag.json" for v in ("nortdur", "rtdur")]
    finally:
        events.write_bytes(original)


def test_resume_setting_change_redoes_every_run(study, tmp_path):
    root, config, _ = study
    out, work = tmp_path / "out", tmp_path / "work"
    _run(study, out, work_dir=work)
    before = _records_mtimes(out)
    changed = tmp_path / "changed.toml"
    changed.write_text(config.read_text().replace("high_pass = 0.01", "high_pass = 0.008"))
    result = run_participant(root, out, load_config(changed), reports=False, log=lambda s: None, work_dir=work)
    assert result.n_unchanged == 0
    after = _records_mtimes(out)
    assert all(after[k] != before[k] for k in before)


def test_resume_redoes_a_run_whose_output_was_removed_or_damaged(study, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    _run(study, out, work_dir=work)
    record = out / "sub-02/func/sub-02_task-nback_run-01_desc-rtdur_nbdiag.json"
    record.unlink()
    design = out / "sub-05/func/sub-05_task-nback_run-01_desc-nortdur_design.tsv"
    design.write_text("damaged\n")
    result, _ = _run(study, out, work_dir=work)
    assert result.n_unchanged == 6
    assert record.exists() and design.read_text() != "damaged\n"


def test_killed_run_partial_record_is_refused_by_group_and_named(study, tmp_path, capsys):
    root = study[0]
    out, work = tmp_path / "out", tmp_path / "work"
    _run(study, out, work_dir=work)
    record = out / "sub-03/func/sub-03_task-nback_run-01_desc-nortdur_nbdiag.json"
    text = record.read_text()
    # a process killed mid-write leaves, with the atomic writer, only a temporary file next to
    # the old record ...
    (record.parent / f".{record.name}.x1y2z3.tmp").write_text(text[: len(text) // 3])
    # ... and a non-atomic copy (e.g. rsync interrupted) leaves a truncated record: both simulated
    record.write_text(text[: len(text) // 2])
    capsys.readouterr()
    code = main([str(root), str(out), "group", "--fail-on", "fail"])
    err = capsys.readouterr().err
    assert code == 2  # refused: nothing is signed off
    rel = record.relative_to(out).as_posix()
    assert f"refused {rel}" in err
    assert not (out / "group" / "signoff.tsv").exists()
    missing = pd.read_csv(out / "group" / "nbdiag_missing.tsv", sep="\t")
    assert rel in missing.to_string()
    assert ".tmp" not in err  # the temporary file is not a record
    # the resume cache does not trust it either: that run is redone
    result, _ = _run(study, out, work_dir=work)
    assert result.n_unchanged == 7
    assert record.read_text() == text
    assert main([str(root), str(out), "group", "--fail-on", "fail"]) in (0, 3)


_KILL_HARNESS = """\
import os, sys, tempfile, time
from pathlib import Path

import nbdiag.outputs.files as outputs
from nbdiag.cli import main

marker, target = Path(sys.argv[1]), sys.argv[2]
atomic_write_bytes = outputs.atomic_write_bytes


def halfway(path, data):
    # atomic_write_bytes' own first step, stopped half way through the data: the process is
    # killed here by the test, with the temporary file half written and the record not renamed
    if path.name == target:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.write(fd, data[: len(data) // 2])
        os.fsync(fd)
        marker.write_text(tmp)
        time.sleep(600)
    return atomic_write_bytes(path, data)


outputs.atomic_write_bytes = halfway
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_mid_write_leaves_nothing_group_or_resume_trusts(study, reference, tmp_path):
    """A participant process killed (SIGKILL) while writing a record: the group level refuses to sign off
    and names the missing runs; a rerun with --work-dir redoes only what is missing and ends equal to one
    uninterrupted run, byte for byte."""
    import signal

    root, config, _ = study
    out, work = tmp_path / "out", tmp_path / "work"
    harness, marker = tmp_path / "harness.py", tmp_path / "writing"
    harness.write_text(_KILL_HARNESS)
    target = "sub-03_task-nback_run-01_desc-rtdur_nbdiag.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, str(harness), str(marker), target, str(root), str(out), "participant",
           "--config", str(config), "--no-reports", "--work-dir", str(work)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the participant process never reached the record write"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    temp = Path(marker.read_text())
    assert temp.exists() and 0 < temp.stat().st_size  # the half-written temporary file is left behind
    assert not (temp.parent / target).exists()  # and the record was never renamed into place
    for path in out.glob("sub-*/**/*_nbdiag.json"):  # every record present is whole
        import json
        json.loads(path.read_text())

    group = subprocess.run([sys.executable, "-m", "nbdiag", str(root), str(out), "group", "--fail-on", "fail"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert group.returncode == 2, group.stderr  # nothing signed off from a killed run
    assert "Traceback" not in group.stderr
    missing = pd.read_csv(out / "group" / "nbdiag_missing.tsv", sep="\t").to_string()
    assert "sub-03" in missing and "sub-08" in missing
    assert ".tmp" not in missing + group.stderr
    assert not (out / "group" / "signoff.tsv").exists()

    result, _ = _run(study, out, work_dir=work)
    assert result.n_unchanged == 2  # sub-01 and sub-02 had finished; sub-03 (half written) is redone
    assert result.n_errors == 0
    assert not temp.exists()  # the leftover temporary file is cleaned up by the rerun
    assert main([str(root), str(out), "group", "--fail-on", "fail"]) in (0, 3)
    got = _outputs(out)
    assert sorted(got) == sorted(reference)
    assert not [k for k in reference if got[k] != reference[k]]


# --------------------------------------------------------------------------- shards
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_four_concurrent_shards_equal_one_process_byte_for_byte(study, reference, tmp_path):
    """The README's SLURM array: 4 shards at once into one OUTPUT_DIR, then group."""
    root, config, _ = study
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = []
    for shard in range(4):
        labels = SUBJECTS[shard::4]
        cmd = [sys.executable, "-m", "nbdiag", str(root), str(out), "participant", "--config", str(config),
               "--no-reports", "--participant-label", *labels]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    group = subprocess.run([sys.executable, "-m", "nbdiag", str(root), str(out), "group"], env=env,
                           capture_output=True, text=True, timeout=600)
    assert group.returncode in (0, 3), group.stderr
    assert "have no output" not in group.stderr
    got = _outputs(out)
    assert sorted(got) == sorted(reference)
    different = [k for k in reference if got[k] != reference[k]]
    assert not different, different
    assert not list(out.rglob("*.tmp"))


def test_group_lists_subjects_with_no_output(study, tmp_path, capsys):
    root, config, _ = study
    out = tmp_path / "out"
    assert main([str(root), str(out), "participant", "--config", str(config), "--no-reports",
                 "--participant-label", "01", "02"]) == 0
    capsys.readouterr()
    main([str(root), str(out), "group"])
    err = capsys.readouterr().err
    assert "6 subject(s)" in err and "sub-03" in err and "sub-08" in err and "sub-01," not in err


# --------------------------------------------------------------------------- parallel backends
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_joblib_n_jobs_equals_serial(study, reference, tmp_path):
    out = tmp_path / "out"
    result, _ = _run(study, out, n_jobs=2)
    assert main([str(study[0]), str(out), "group"]) in (0, 3)
    got = _outputs(out)
    assert got == reference


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dask_local_cluster_equals_local_run(study, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        result, lines = _run(study, out, dask_scheduler=cluster.scheduler_address)
    assert result.n_errors == 0 and len(lines) >= 8
    assert main([str(study[0]), str(out), "group"]) in (0, 3)
    got = _outputs(out)
    assert sorted(got) == sorted(reference)
    assert [k for k in reference if got[k] != reference[k]] == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dask_scheduler_via_cli_threads_worker(study, reference, tmp_path):
    """A threaded worker (several runs per process) gives the same bytes too."""
    distributed = pytest.importorskip("distributed")
    root, config, _ = study
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:  # in-process (inproc://) transport
        code = main([str(root), str(out), "participant", "--config", str(config), "--no-reports",
                     "--dask-scheduler", cluster.scheduler_address])
    assert code == 0
    assert main([str(root), str(out), "group"]) in (0, 3)
    got = _outputs(out)
    assert [k for k in reference if got.get(k) != reference[k]] == []


# --------------------------------------------------------------------------- progress
def test_progress_plain_lines_and_counts():
    from nbdiag.participant.runner import Progress

    lines: list[str] = []
    bar = Progress(2, lines.append, live=False)
    bar.update("[1/2] sub-01  a: pass, b: warn  (0.1 s)", ["pass", "warn"])
    bar.update("[2/2] sub-02  a: error  (0.1 s)\n    error (a): bad", ["error"], skipped=False)
    bar.close()
    assert lines == ["[1/2] sub-01  a: pass, b: warn  (0.1 s)", "[2/2] sub-02  a: error  (0.1 s)\n    error (a): bad"]
    assert bar.counts == {"pass": 1, "warn": 1, "fail": 0, "error": 1}


def test_progress_live_bar_shows_rate_eta_and_counts():
    pytest.importorskip("rich")
    from rich.console import Console

    from nbdiag.participant.runner import Progress

    stream = io.StringIO()
    bar = Progress(3, lambda s: None, live=True, console=Console(file=stream, force_terminal=True, width=200))
    for status in ("pass", "fail", "warn"):
        bar.update(f"[x/3] run  v: {status}  (0.1 s)", [status])
    bar.close()
    text = stream.getvalue()
    assert "3/3" in text and "runs/s" in text and "ETA" in text
    assert "pass 1" in text and "warn 1" in text and "fail 1" in text and "error 0" in text


def test_plain_lines_when_stderr_is_not_a_terminal(study, tmp_path, capsys):
    root, config, _ = study
    assert main([str(root), str(tmp_path / "out"), "participant", "--config", str(config), "--no-reports",
                 "--participant-label", "01"]) == 0
    err = capsys.readouterr().err
    assert "[1/1] sub-01_task-nback_run-01  nortdur:" in err


def test_resume_rewrites_a_missing_subject_report_from_the_records_on_disk(study, tmp_path):
    root, config, _ = study
    out, work = tmp_path / "out", tmp_path / "work"
    lines: list[str] = []
    kwargs = dict(participant_labels=["01", "02"], log=lines.append, work_dir=work)
    first = run_participant(root, out, load_config(config), **kwargs)
    assert len(first.reports) == 2
    (out / "sub-01.html").unlink()
    again = run_participant(root, out, load_config(config), **kwargs)
    assert again.n_unchanged == 2
    assert [p.name for p in again.reports] == ["sub-01.html"]
    html = (out / "sub-01.html").read_text()
    assert "nortdur" in html and "rtdur" in html
