"""--work-dir bookkeeping: a run is 'done' only with a matching key and intact outputs; bad caches are ignored."""

from __future__ import annotations

from pathlib import Path

from nbdiag.inputs.bids import RunInputs
from nbdiag.outputs.files import run_folder
from nbdiag.participant.workdir import WorkDir


def _setup(tmp_path):
    wd = WorkDir(tmp_path / "work", tmp_path / "bids", tmp_path / "out")
    run = RunInputs(subject="01", entities={"sub": "01", "task": "t", "run": "01"},
                    bold=tmp_path / "bids" / "sub-01" / "func" / "sub-01_task-t_run-01_bold.nii.gz")
    folder = run_folder(tmp_path / "out", run.entities)
    folder.mkdir(parents=True)
    for suffix in ("_design.tsv", "_design.json", "_nbdiag.json"):
        (folder / f"{run.prefix}_desc-v{suffix}").write_text("x")
    return wd, run, folder


def test_done_needs_matching_key_and_intact_outputs(tmp_path):
    wd, run, folder = _setup(tmp_path)
    assert wd.done(run, "k1", ["v"]) is None                      # never marked
    wd.mark_done(run, "k1", {"v": "warn"})
    assert wd.done(run, "k1", ["v"]) == {"v": "warn"}
    assert wd.done(run, "k2", ["v"]) is None                      # settings or inputs changed
    assert wd.done(run, "k1", ["v", "w"]) is None                 # a variant added
    (folder / f"{run.prefix}_desc-v_design.tsv").write_text("changed")
    assert wd.done(run, "k1", ["v"]) is None                      # an output edited
    wd.forget(run)
    wd.forget(run)                                                 # forgetting twice is fine
    assert wd.done(run, "k1", ["v"]) is None


def test_corrupt_entries_and_discovery_cache_are_ignored(tmp_path):
    wd, run, _ = _setup(tmp_path)
    path = wd._run_path(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{truncated")
    assert wd.done(run, "k1", ["v"]) is None
    path.write_text("[1]")
    assert wd.done(run, "k1", ["v"]) is None
    wd._save_discovery("01", "key", [run], ["a note"])
    runs, notes, skipped = wd._load_discovery("01", "key")
    assert [r.prefix for r in runs] == [run.prefix] and notes == ["a note"] and skipped == []
    assert wd._load_discovery("01", "other key") is None
    wd._discovery_path("01").write_bytes(b"\x80\x04 not a pickle")
    assert wd._load_discovery("01", "key") is None
    assert wd._load_discovery("02", "key") is None
    assert Path(wd.root).name == "nbdiag"
