"""Hostile and broken inputs (issue 13): never silent, never a traceback, never a stale sign-off.

Every case asserts: the exit code of the table in the README (0 pass, 1 runs not audited,
2 usage, 3 QC, 4 bug), a message naming the file and the field, no traceback on stderr,
the other runs audited, the inputs byte-identical and the outputs valid JSON/HTML.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nbdiag.cli import main
from nbdiag.demo.synth import DatasetSpec, EventsRecipe, RunSpec, run_paths, write_dataset

ARGS = ["--task", "nback", "--space", "MNI152NLin6Asym", "--derivatives", "derivatives/fmriprep",
        "--img-filter", "desc", "preproc", "--confounds-strategy", "motion", "--confounds-motion", "basic"]
REPO = Path(__file__).resolve().parents[1]


def _spec() -> DatasetSpec:
    recipe = EventsRecipe(n_blocks=2, block_s=20.0, trial_s=2.0, instruction_s=4.0,
                          fixation_s=(10.0, 10.0), first_onset=4.0)
    common = dict(n_scans=50, t_r=2.0, image="header", events=recipe)
    return DatasetSpec(runs=[RunSpec("01", run=1, **common), RunSpec("01", run=2, **common),
                             RunSpec("02", run=1, **common)])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("hostile") / "bids", _spec())


@pytest.fixture()
def ds(template, tmp_path):
    """A private copy of the 3-run dataset: (root, paths of run 0, 1, 2)."""
    root = tmp_path / "bids"
    shutil.copytree(template, root, symlinks=True)
    spec = _spec()
    return root, [run_paths(root, spec, r) for r in spec.runs], spec


def digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            key = os.fsencode(p.relative_to(root)).hex()
            if p.is_symlink():
                out[key] = "link:" + os.readlink(p)
            elif p.is_file():
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class _Strict(HTMLParser):
    pass


def assert_outputs_valid(out: Path) -> None:
    """Every JSON output parses (no NaN); every HTML page is complete."""
    if not out.exists():
        return
    for p in out.rglob("*.json"):
        json.loads(p.read_text(encoding="utf-8"), parse_constant=lambda c: pytest.fail(f"{p}: {c}"))  # noqa: B023
    for p in out.rglob("*.html"):
        text = p.read_text(encoding="utf-8")
        _Strict().feed(text)
        assert text.rstrip().endswith("</html>"), p
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def records(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in out.rglob("*_nbdiag.json")}


def record_of(out: Path, prefix: str) -> dict:
    found = [r for n, r in records(out).items() if n.startswith(prefix + "_")]
    assert len(found) == 1, sorted(records(out))
    return found[0]


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def participant(ds, out, capsys, *extra, reports=False) -> tuple[int, str]:
    root = ds[0]
    before = digest(root)
    code, err = run_cli(capsys, root, out, "participant", *ARGS, *extra, *([] if reports else ["--no-reports"]))
    assert digest(root) == before, "inputs modified"
    assert_outputs_valid(out)
    return code, err


def assert_run_error(out, ds, index, *texts, column=None):
    """Run ``index`` is an error naming its file and field; the other runs are audited."""
    spec = ds[2]
    rec = record_of(out, spec.runs[index].prefix)
    assert rec["status"] == "error", rec["status"]
    message = rec["error"]["message"]
    assert rec["error"]["file"], rec["error"]
    for text in texts:
        assert text in message, message
    if column:
        assert rec["error"]["column"] == column
    for i, run in enumerate(spec.runs):
        if i != index:
            assert record_of(out, run.prefix)["status"] != "error", run.prefix
    return rec


# --------------------------------------------------------------------------- #
# one broken run (exit 1), the others audited
# --------------------------------------------------------------------------- #
def _write_events(path: Path, mutate) -> None:
    events = pd.read_csv(path, sep="\t")
    mutate(events)
    path.unlink()
    events.to_csv(path, sep="\t", index=False, na_rep="n/a")


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _annex_link(path: Path) -> None:
    path.unlink()
    path.symlink_to("../../../.git/annex/objects/Xx/Yy/SHA256E-s100--abc/SHA256E-s100--abc")


def _outside_link(path: Path, tmp: Path) -> Path:
    secret = tmp / "secret.tsv"
    secret.write_text("onset\tduration\ttrial_type\nSECRET-CONTENT-LINE\t1\tx\n")
    path.unlink()
    path.symlink_to(secret)
    return secret


RUN_ERRORS = {
    # case: (mutate(paths, tmp), texts in the message, column)
    "events_missing": (lambda p, t: p.events.unlink(), ["no events.tsv"], None),
    "events_unfetched_annex": (lambda p, t: _annex_link(p.events), ["unfetched git-annex", "datalad get"], None),
    "events_symlink_loop": (lambda p, t: (p.events.unlink(), p.events.symlink_to(p.events.name)),
                            ["symlink loop"], None),
    "events_outside_dataset": (lambda p, t: _outside_link(p.events, t), ["outside BIDS_DIR"], None),
    "events_is_folder": (lambda p, t: (p.events.unlink(), p.events.mkdir()), ["not a regular file"], None),
    "events_inf_onset": (lambda p, t: _write_events(p.events, lambda e: e.__setitem__("onset", e["onset"].where(
        e.index != 2, np.inf))), ["infinite 'onset'"], "onset"),
    "events_inf_duration": (lambda p, t: _write_events(p.events, lambda e: e.__setitem__(
        "duration", e["duration"].where(e.index != 1, -np.inf).abs())), ["infinite 'duration'"], "duration"),
    "events_nan_onset": (lambda p, t: _write_events(p.events, lambda e: e.__setitem__("onset", e["onset"].where(
        e.index != 3, np.nan))), ["non-numeric 'onset'"], "onset"),
    "events_negative_duration": (lambda p, t: _write_events(p.events, lambda e: e.__setitem__(
        "duration", e["duration"].where(e.index != 1, -2.0))), ["negative duration"], "duration"),
    "events_empty_file": (lambda p, t: _replace(p.events, b""), ["events file is empty"], None),
    "events_binary": (lambda p, t: _replace(p.events, b"\xff\xfe\x00\x01onset\tduration\n\x80\x81\t2\n"),
                      ["events file"], None),
    "events_comma_separated": (lambda p, t: _replace(p.events, b"onset,duration,trial_type\n1,2,SECRETA\n"),
                               ["not tab-separated"], None),
    "events_header_only": (lambda p, t: _replace(p.events, b"onset\tduration\ttrial_type\n"), ["no rows"], None),
    "events_no_onset_column": (lambda p, t: _replace(p.events, b"start\tduration\n1\t2\n"), ["no 'onset'"], "onset"),
    "confounds_missing": (lambda p, t: p.confounds.unlink(),
                          ["no confounds file", "confounds_strategy ['motion']"], None),
    "confounds_unfetched_annex": (lambda p, t: _annex_link(p.confounds), ["unfetched git-annex", "confounds_strategy"],
                                  None),
    "confounds_outside_dataset": (lambda p, t: _outside_link(p.confounds, t), ["outside BIDS_DIR"], None),
    "confounds_binary": (lambda p, t: _replace(p.confounds, b"\x00\x01\x02\xff" * 50), ["confounds"], None),
    "confounds_json_syntax": (lambda p, t: _replace(p.confounds.with_suffix(".json"), b"{not json"),
                              ["confounds JSON sidecar", "not valid JSON"], None),
    "confounds_rows": (lambda p, t: _replace(p.confounds, b"\n".join(p.confounds.read_bytes().split(b"\n")[:-10])
                                             + b"\n"), ["row count differs"], None),
    "bold_one_volume": (None, ["at least 2"], None),
}


@pytest.mark.parametrize("case", sorted(RUN_ERRORS))
def test_one_broken_run(ds, tmp_path, capsys, case):
    mutate, texts, column = RUN_ERRORS[case]
    paths = ds[1][0]
    if case == "bold_one_volume":
        import nibabel as nib

        img = nib.load(str(paths.bold))
        paths.bold.unlink()
        nib.save(nib.Nifti1Image(np.zeros(img.shape[:3] + (1,), dtype=np.int16), img.affine), str(paths.bold))
        _replace(paths.confounds, b"\n".join(paths.confounds.read_bytes().split(b"\n")[:2]) + b"\n")
    else:
        mutate(paths, tmp_path)
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys, reports=case in ("events_outside_dataset", "events_binary"))
    assert code == 1, err
    rec = assert_run_error(out, ds, 0, *texts, column=column)
    assert rec["error"]["message"].split(" (")[0] in err  # the progress output names it too
    # file content never quoted in the outputs (only the field being reported)
    for p in out.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert b"SECRET-CONTENT-LINE" not in data and b"SECRETA" not in data, p


def test_limits_from_config(ds, tmp_path, capsys):
    paths = ds[1]
    _write_events(paths[0].events, lambda e: None)
    events = pd.read_csv(paths[0].events, sep="\t")
    pd.concat([events] * 20).to_csv(paths[0].events, sep="\t", index=False, na_rep="n/a")  # ~500 rows
    conf = pd.read_csv(paths[1].confounds, sep="\t")
    wide = pd.concat([conf] + [conf[["trans_x"]].rename(columns={"trans_x": f"extra{i}"}) for i in range(60)], axis=1)
    paths[1].confounds.unlink()
    wide.to_csv(paths[1].confounds, sep="\t", index=False, na_rep="n/a")
    cfg = tmp_path / "limits.toml"
    cfg.write_text("[limits]\nmax_event_rows = 100\nmax_confound_columns = 80\n")
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys, "--config", cfg)
    assert code == 1
    recs = {r["run"]["prefix"]: r for r in records(out).values()}
    assert "max_event_rows" in recs[ds[2].runs[0].prefix]["error"]["message"]
    assert "max_confound_columns" in recs[ds[2].runs[1].prefix]["error"]["message"]
    assert recs[ds[2].runs[2].prefix]["status"] != "error"
    cfg.write_text("[limits]\nmax_scans = 45\n")
    code, err = participant(ds, tmp_path / "out3", capsys, "--config", cfg)
    assert code == 1
    assert all("max_scans" in r["error"]["message"] for r in records(tmp_path / "out3").values())
    # the defaults audit all three
    code, err = participant(ds, tmp_path / "out2", capsys)
    assert code == 0, err


# --------------------------------------------------------------------------- #
# readable but odd: a note or a finding, never silent (exit 0)
# --------------------------------------------------------------------------- #
SIDECARS = {"empty": b"", "bom": b"\xef\xbb\xbf{\"RepetitionTime\": 2.0}", "list": b"[2.0]",
            "string_tr": b"{\"RepetitionTime\": \"0.8s\"}", "negative_tr": b"{\"RepetitionTime\": -2}",
            "latin1": b"{\"RepetitionTime\": 2.0, \"x\": \"\xe9\"}", "nan_tr": b"{\"RepetitionTime\": NaN}"}


@pytest.mark.parametrize("case", sorted(SIDECARS))
@pytest.mark.parametrize("which", [0, 2])  # 0: the first sidecar nilearn reads for the dataset t_r; 2: another
def test_unreadable_sidecar_is_a_note(ds, tmp_path, capsys, case, which):
    sidecar = ds[1][which].bold_sidecar
    _replace(sidecar, SIDECARS[case])
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys, "-v")
    assert code == 0, err
    name = sidecar.name
    assert name in err  # named in the console notes
    if which == 2:
        rec = record_of(out, ds[2].runs[2].prefix)
        assert any(name in n for n in rec["notes"]), rec["notes"]
    for rec in records(out).values():
        assert rec["settings"]["t_r"]["value"] == 2.0


def test_events_without_trial_type_follow_nilearn(ds, tmp_path, capsys):
    from nilearn.glm.first_level import make_first_level_design_matrix

    path = ds[1][0].events
    _write_events(path, lambda e: e.drop(columns=["trial_type"], inplace=True))
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys)
    assert code == 0, err
    rec = record_of(out, ds[2].runs[0].prefix)
    finding = [f for f in rec["findings"] if f["title"] == "No trial_type column"][0]
    assert "dummy" in finding["message"] and path.name in finding["message"]
    design = pd.read_csv(next(out.rglob(f"{ds[2].runs[0].prefix}_*_design.tsv")), sep="\t")
    events = pd.read_csv(path, sep="\t")
    times = np.linspace(0, 49 * 2.0, 50)
    with pytest.warns(UserWarning, match="trial_type"):
        ref = make_first_level_design_matrix(times, events, hrf_model="glover", drift_model="cosine",
                                             high_pass=0.01)
    assert list(design.columns[:1]) == ["dummy"] and "dummy" in ref.columns
    np.testing.assert_allclose(design["dummy"].to_numpy(), ref["dummy"].to_numpy(), atol=1e-8)


@pytest.mark.parametrize("column, value", [("duration", 1e9), ("duration", 1e300), ("onset", 1e9)])
def test_absurd_finite_values_warn(ds, tmp_path, capsys, column, value):
    _write_events(ds[1][0].events, lambda e: e.__setitem__(column, e[column].where(e.index != 2, value)))
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys)
    assert code == 0, err
    rec = record_of(out, ds[2].runs[0].prefix)
    warns = [f for f in rec["findings"] if f["severity"] == "warn"
             and f["code"] in ("events_invalid", "events_outside_run")]
    assert warns, [f["code"] for f in rec["findings"]]
    assert rec["status"] in ("warn", "fail")


def test_unfetched_image_no_n_scans_mismatch(ds, tmp_path, capsys):
    _annex_link(ds[1][0].bold)
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys)
    assert code == 0, err
    rec = record_of(out, ds[2].runs[0].prefix)
    assert "unfetched" in rec["settings"]["n_scans"]["source"]
    assert any("confounds row count" in n for n in rec["notes"])
    assert not [f for f in rec["findings"] if f["code"] == "n_scans_mismatch"]


def test_confounds_json_list_is_a_note_without_compcor(ds, tmp_path, capsys):
    sidecar = ds[1][0].confounds.with_suffix(".json")
    _replace(sidecar, b"[1, 2]")
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys)
    assert code == 0, err
    rec = record_of(out, ds[2].runs[0].prefix)
    assert any(sidecar.name in n and "JSON list" in n for n in rec["notes"]), rec["notes"]
    # with CompCor (which reads it), an error naming the sidecar
    code, err = participant(ds, tmp_path / "out2", capsys, "--confounds-strategy", "motion", "high_pass",
                            "compcor")
    assert code == 1
    assert_run_error(tmp_path / "out2", ds, 0, "confounds JSON sidecar", sidecar.name)


def test_compcor_without_confounds_json_names_the_sidecar(ds, tmp_path, capsys):
    sidecar = ds[1][0].confounds.with_suffix(".json")
    sidecar.unlink()
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys, "--confounds-strategy", "motion", "high_pass", "compcor")
    assert code == 1
    assert_run_error(out, ds, 0, "confounds JSON sidecar missing", "CompCor")


def test_hostile_labels_and_non_utf8_names(ds, tmp_path, capsys):
    root = ds[0]
    hostile = root / "derivatives" / "fmriprep" / "sub-x<svg onload=alert(1)>"
    hostile.mkdir()
    func = ds[1][0].bold.parent
    (Path(os.fsdecode(bytes(func) + b"/sub-01_caf\xe9_notes.txt"))).write_bytes(b"x")
    # a non-UTF-8 name that matches the BOLD pattern: skipped with a note, the subject's report kept
    odd = bytes(ds[1][0].bold).replace(b"run-01", b"run-0\xe9")
    shutil.copyfile(ds[1][0].bold, os.fsdecode(odd))
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys, reports=True)
    assert code == 0, err
    assert "not a BIDS subject label" in err
    assert "are not BIDS labels" in err and "image skipped" in err
    assert len(records(out)) == 3
    names = [os.fsencode(p.name) for p in out.rglob("*")]
    assert not [n for n in names if b"<" in n or b"svg" in n]
    assert (out / "sub-01.html").is_file() and (out / "sub-02.html").is_file()


def test_integer_trial_types_in_nilearns_column_order(tmp_path, capsys):
    """Trial types 1..12: nilearn orders the columns 1, 2, ..., 12 (checked with a real fit)."""
    from nilearn.glm.first_level import first_level_from_bids

    onsets = np.arange(24) * 8.0 + 2.0
    events = pd.DataFrame({"onset": onsets, "duration": 2.0, "trial_type": np.tile(np.arange(1, 13), 2)})
    spec = DatasetSpec(runs=[RunSpec("01", run=1, n_scans=110, t_r=2.0, image="tiny", events=events)])
    root = write_dataset(tmp_path / "bids", spec)
    out = tmp_path / "out"
    code = main([str(root), str(out), "participant", *ARGS, "--no-reports"])
    assert code == 0, capsys.readouterr().err
    design = pd.read_csv(next(out.rglob("*_design.tsv")), sep="\t")
    import nibabel as nib

    first = nib.load(str(run_paths(root, spec, spec.runs[0]).bold))
    mask = nib.Nifti1Image(np.ones(first.shape[:3], dtype="uint8"), first.affine)
    models, imgs, evs, confs = first_level_from_bids(
        root, "nback", space_label=spec.space, img_filters=[("desc", "preproc")],
        derivatives_folder=spec.derivatives, confounds_strategy=("motion",), confounds_motion="basic",
        mask_img=mask)
    models[0].fit(imgs[0], evs[0], confs[0])
    ref = models[0].design_matrices_[0]
    assert [str(c) for c in ref.columns] == list(design.columns)
    assert list(design.columns[:12]) == [str(i) for i in range(1, 13)]
    np.testing.assert_allclose(design.to_numpy(), ref.to_numpy(), atol=1e-8)


# --------------------------------------------------------------------------- #
# usage errors: exit 2, one line, nothing run
# --------------------------------------------------------------------------- #
USAGE = {
    "output_dir_is_file": (lambda tmp: [], "is an existing file"),
    "config_is_folder": (lambda tmp: ["--config", str(tmp)], "found a folder"),
    "config_missing": (lambda tmp: ["--config", str(tmp / "nope.toml")], "config file not found"),
    "config_latin1": (lambda tmp: ["--config", _cfg(tmp, b"[model]\nhigh_pass = 0.01 # caf\xe9\n")], "not UTF-8"),
    "config_bom": (lambda tmp: ["--config", _cfg(tmp, b"\xef\xbb\xbf[model]\nhigh_pass = 0.01\n")], "BOM"),
    "config_strategy_int": (lambda tmp: ["--config", _cfg(tmp, b"[model]\nconfounds_strategy = 5\n")],
                            "confounds_strategy"),
    "config_rename_int": (lambda tmp: ["--config", _cfg(tmp, b"[events.rename]\n0BACK = 1\n")], "rename"),
    "config_threshold_nan": (lambda tmp: ["--config", _cfg(tmp, b"[thresholds]\nvif_warn = nan\n")], "vif_warn"),
    "config_limit_negative": (lambda tmp: ["--config", _cfg(tmp, b"[limits]\nmax_scans = -1\n")], "max_scans"),
    "config_model_not_table": (lambda tmp: ["--config", _cfg(tmp, b"model = 3\n")], "model"),
    "t_r_nan": (lambda tmp: ["--t-r", "nan"], "--t-r"),
    "t_r_negative": (lambda tmp: ["--t-r", "-2"], "t_r"),
    "high_pass_inf": (lambda tmp: ["--high-pass", "inf"], "--high-pass"),
    "config_t_r_nan": (lambda tmp: ["--config", _cfg(tmp, b"[model]\nt_r = nan\n")], "t_r"),
    "config_high_pass_inf": (lambda tmp: ["--config", _cfg(tmp, b"[model]\nhigh_pass = inf\n")], "high_pass"),
    "n_jobs_zero": (lambda tmp: ["--n-jobs", "0"], "--n-jobs"),
    "unknown_option": (lambda tmp: ["--no-such-option"], "unrecognized arguments"),
    "derivatives_escape": (lambda tmp: ["--derivatives", "../../../../etc"], "derivatives_folder"),
    "derivatives_absolute": (lambda tmp: ["--derivatives", "/etc"], "derivatives_folder"),
    "bad_label": (lambda tmp: ["--participant-label", "x<svg>"], "participant_label"),
    "rename_empty": (lambda tmp: ["--events-rename", "0BACK="], "rename"),
}


def _cfg(tmp: Path, data: bytes) -> str:
    path = tmp / "cfg.toml"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_error_exit_2(ds, tmp_path, capsys, case):
    make, text = USAGE[case]
    out = tmp_path / "out"
    if case == "output_dir_is_file":
        out.write_text("x")
    code, err = participant(ds, out, capsys, *make(tmp_path))
    assert code == 2, err
    assert text in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line
    assert not list(out.rglob("*_nbdiag.json")) if out.is_dir() else True


# --------------------------------------------------------------------------- #
# property-based: event tables and sidecars
# --------------------------------------------------------------------------- #
_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                     st.sampled_from(["n/a", "", "abc", "1e300", "-0", "1,5", "inf"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(onsets=st.lists(_numbers, min_size=1, max_size=6), durations=st.lists(_numbers, min_size=1, max_size=6),
       types=st.lists(st.one_of(st.integers(-3, 20), st.text(max_size=6), st.sampled_from(["n/a", "<b>x</b>"])),
                      min_size=1, max_size=6))
def test_property_event_tables(ds, tmp_path_factory, capsys, onsets, durations, types):
    n = min(len(onsets), len(durations), len(types))
    path = ds[1][0].events
    lines = ["onset\tduration\ttrial_type"] + [
        "\t".join(str(v).replace("\t", " ").replace("\n", " ").replace("\r", " ") for v in row)
        for row in zip(onsets[:n], durations[:n], types[:n])]
    path.unlink()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    out = tmp_path_factory.mktemp("prop")
    code, err = participant(ds, out, capsys)
    assert code in (0, 1), err
    rec = record_of(out, ds[2].runs[0].prefix)
    if code == 1:
        assert rec["status"] == "error"
        assert rec["error"]["code"] != "internal_error", rec["error"]
        assert path.name in rec["error"]["message"]
    for i in (1, 2):
        assert record_of(out, ds[2].runs[i].prefix)["status"] != "error"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=40),
    st.builds(lambda v: json.dumps({"RepetitionTime": v}), st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.none(), st.booleans(),
        st.lists(st.integers(), max_size=2))),
    st.builds(json.dumps, st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5)))))
def test_property_sidecars(ds, tmp_path_factory, capsys, content):
    sidecar = ds[1][2].bold_sidecar
    sidecar.unlink()
    sidecar.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path_factory.mktemp("prop")
    code, err = participant(ds, out, capsys)
    assert code == 0, err
    for rec in records(out).values():
        assert rec["status"] != "error"
        assert math.isfinite(rec["settings"]["t_r"]["value"]) and rec["settings"]["t_r"]["value"] > 0


# --------------------------------------------------------------------------- #
# the manifest: kill-and-resume, stale rows, changed inputs, concurrent shards and groups
# --------------------------------------------------------------------------- #
def group(ds, out, capsys, *extra, check_outputs=True) -> tuple[int, str]:
    before = digest(ds[0])
    code, err = run_cli(capsys, ds[0], out, "group", *extra)
    assert digest(ds[0]) == before
    if check_outputs:
        assert_outputs_valid(out)
    return code, err


def _signoff(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "group" / "signoff.tsv", sep="\t", dtype=str, keep_default_na=False)


def _include(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "group" / "include.tsv", sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture()
def audited(ds, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys)
    assert code == 0, err
    return out


def test_group_complete_exit_0(ds, audited, capsys):
    code, err = group(ds, audited, capsys)
    assert code == 0, err
    assert len(_include(audited)) == 3


@pytest.mark.parametrize("kill", ["record_removed", "record_truncated", "temp_file_left"])
def test_kill_and_resume(ds, audited, capsys, kill):
    rec = sorted(audited.rglob("*_nbdiag.json"))[1]
    if kill == "record_truncated":
        rec.write_bytes(rec.read_bytes()[:200])
    else:
        rec.unlink()
        if kill == "temp_file_left":
            (rec.parent / f".{rec.name}.abc123.tmp").write_text("{")
    (audited / "group").mkdir(exist_ok=True)
    (audited / "group" / "signoff.tsv").write_text("stale")  # from an earlier group run
    code, err = group(ds, audited, capsys, check_outputs=False)  # the damaged record is ours
    assert code == 2, err
    assert rec.name in err
    assert not (audited / "group" / "signoff.tsv").exists()  # no stale sign-off survives
    missing = pd.read_csv(audited / "group" / "nbdiag_missing.tsv", sep="\t", dtype=str)
    assert rec.name in " ".join(missing["record"].fillna(""))
    # --allow-incomplete: the others are signed off, the missing one listed, exit 1
    code, err = group(ds, audited, capsys, "--allow-incomplete", check_outputs=False)
    assert code == 1, err
    so = _signoff(audited)
    assert set(so["status"]) >= {"pass"} or set(so["status"]) >= {"warn"}
    assert (so["status"].isin(["missing", "refused"])).sum() == 1
    assert len(_include(audited)) == 2
    assert "nbdiag_missing.tsv" in (audited / "group.html").read_text() or "Not signed off" in (
        audited / "group.html").read_text()
    # resume: rerun the participant level, the group level accepts it
    code, err = participant(ds, audited, capsys)
    assert code == 0
    code, err = group(ds, audited, capsys)
    assert code == 0, err
    assert len(_include(audited)) == 3


def test_rerun_with_fewer_variants_leaves_no_stale_rows(ds, tmp_path, capsys):
    cfg = tmp_path / "v.toml"
    cfg.write_text('[variants.a]\nhigh_pass = 0.01\n[variants.b]\nhigh_pass = 0.02\n')
    out = tmp_path / "out"
    assert participant(ds, out, capsys, "--config", cfg)[0] == 0
    assert group(ds, out, capsys)[0] in (0, 3)  # 3: QC, not completeness
    assert set(_signoff(out)["variant"]) == {"a", "b"}
    cfg.write_text('[variants.a]\nhigh_pass = 0.01\n')
    assert participant(ds, out, capsys, "--config", cfg)[0] == 0
    code, err = group(ds, out, capsys)
    assert code in (0, 3), err
    assert set(_signoff(out)["variant"]) == {"a"} and set(_include(out)["variant"]) <= {"a"}
    assert "stale record left out" in err


def test_deleted_subject_refused_then_dropped(ds, audited, capsys):
    shutil.rmtree(ds[0] / "sub-02")
    shutil.rmtree(ds[0] / "derivatives" / "fmriprep" / "sub-02")
    before = {p: p.read_bytes() for p in audited.rglob("*") if p.is_file()}
    code, err = group(ds, audited, capsys)
    assert code == 2
    assert "not found under BIDS_DIR" in err and "sub-02" in err and "Nothing in OUTPUT_DIR was changed" in err
    assert {p: p.read_bytes() for p in audited.rglob("*") if p.is_file()} == before
    assert participant(ds, audited, capsys)[0] == 0  # rerun on the dataset as it is now
    code, err = group(ds, audited, capsys)
    assert code == 0, err
    assert set(_include(audited)["subject"]) == {"01"}
    assert "02" not in set(_signoff(audited)["subject"])


def test_changed_input_and_changed_settings_refused(ds, audited, capsys):
    events = ds[1][2].events
    data = events.read_bytes()
    events.unlink()
    events.write_bytes(data + b"\n")
    code, err = group(ds, audited, capsys)
    assert code == 2 and "changed since the audit" in err and events.name in err
    # settings changed for one shard only: the other subject's records are from another settings hash
    assert participant(ds, audited, capsys, "--participant-label", "02", "--high-pass", "0.02")[0] == 0
    code, err = group(ds, audited, capsys)
    assert code == 2 and "another settings hash" in err


def test_malformed_record_refused_not_a_traceback(ds, audited, capsys):
    rec = sorted(audited.rglob("*_nbdiag.json"))[0]
    data = json.loads(rec.read_text())
    data["contrasts"] = [1, 2]
    rec.write_text(json.dumps(data))
    code, err = group(ds, audited, capsys)
    assert code == 2 and "partial or malformed record: record.contrasts: list [1, 2] is none of Mapping" in err


def test_group_while_participant_is_writing(ds, tmp_path, capsys):
    """A manifest lists 3 runs, only 1 record is written yet: refused, nothing signed off."""
    out = tmp_path / "out"
    assert participant(ds, out, capsys)[0] == 0
    for rec in sorted(out.rglob("*_nbdiag.json"))[1:]:
        rec.unlink()
    code, err = group(ds, out, capsys)
    assert code == 2 and err.count("missing ") >= 2


def test_subject_without_task_listed_in_group(ds, tmp_path, capsys):
    for p in (ds[0] / "derivatives" / "fmriprep" / "sub-02").rglob("*task-nback*"):
        new = Path(str(p).replace("task-nback", "task-rest"))
        p.rename(new)
    out = tmp_path / "out"
    assert participant(ds, out, capsys)[0] == 0
    code, err = group(ds, out, capsys)
    assert code == 0, err
    so = _signoff(out)
    assert so.loc[so["subject"] == "02", "status"].tolist() == ["skipped"]
    assert so.loc[so["subject"] == "02", "signoff"].tolist() == ["excluded"]
    assert "skipped_subject" in (out / "group.html").read_text()


@pytest.mark.slow
def test_concurrent_shards_then_group(ds, tmp_path, capsys):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-m", "nbdiag", str(ds[0]), str(out), "participant", *ARGS,
                               "--no-reports", "--participant-label", label], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for label in ("01", "02")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    assert sorted(p.name for p in (out / ".nbdiag" / "manifests").glob("*.json")) == ["sub-01.json", "sub-02.json"]
    code, err = group(ds, out, capsys)
    assert code == 0, err
    assert len(_include(out)) == 3


def test_concurrent_group_runs(ds, audited):
    from nbdiag.group.pipeline import run_group

    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(run_group(audited, bids_dir=ds[0])))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0, 0, 0]
    assert_outputs_valid(audited)
    assert len(_include(audited)) == 3


def test_internal_error_exit_4_points_to_the_record(ds, tmp_path, capsys, monkeypatch):
    import nbdiag.record.build as record

    def boom(*a, **k):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(record, "audit_design_into", boom)
    out = tmp_path / "out"
    code, err = participant(ds, out, capsys)
    assert code == 4
    line = [ln for ln in err.splitlines() if "internal error" in ln][0]
    rec_path = line.split("'error.traceback' of ")[1].split(";")[0]
    assert "ZeroDivisionError" in json.loads(Path(rec_path).read_text())["error"]["traceback"]


def test_library_warnings_are_one_line(ds, tmp_path, capsys, monkeypatch):
    import warnings

    import nbdiag.participant.pipeline as pipeline

    original = pipeline.discover

    def noisy(*a, **k):
        warnings.warn("something odd\nover two lines", UserWarning)
        return original(*a, **k)

    monkeypatch.setattr(pipeline, "discover", noisy)
    code, err = participant(ds, tmp_path / "out", capsys)
    assert code == 0
    assert "nbdiag: warning (UserWarning): something odd over two lines" in err
    assert "warnings.warn(" not in err and ".py:" not in err


def test_design_subcommand_hostile(tmp_path, capsys):
    bad = tmp_path / "d.tsv"
    bad.write_text("a\tb\n1\t2\n2\t3\n")
    assert run_cli(capsys, "design", tmp_path, "--contrast", "a")[0] == 1  # a folder: input error, named
    code, err = run_cli(capsys, "design", bad, "--contrast", "a", "--t-r", "nan")
    assert code == 2 and "--t-r" in err and len(err.strip().splitlines()) == 1


def test_manifest_keys():
    """One implementation of the settings hash and input fingerprints (shared with --work-dir)."""
    from dataclasses import replace as dc_replace

    from nbdiag.config import Settings
    from nbdiag.outputs.manifest import fingerprint, settings_hash

    base = Settings()
    shard = dc_replace(base, model=dc_replace(base.model, sub_labels=("01",)))
    other = dc_replace(base, model=dc_replace(base.model, high_pass=0.02))
    assert settings_hash(base.to_dict()) == settings_hash(shard.to_dict())  # shards share it
    assert settings_hash(base.to_dict()) != settings_hash(other.to_dict())
    assert fingerprint(None) is None
    assert fingerprint(Path("/nonexistent/x")) == {"exists": False}
