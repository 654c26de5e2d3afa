"""Provenance by content: fingerprints, copies of a dataset, and what `group` does with them.

Records fingerprint their inputs by content (``nbdiag.outputs.manifest.fingerprint``): the same bytes
anywhere give byte-identical records and reports, a copy's records are accepted by ``group``,
and ``group`` changes nothing when it cannot find the inputs (a wrong BIDS_DIR, an unfetched
DataLad copy), while an input whose content changed is named with its old and new hash and the
earlier sign-off is moved to ``group/stale/``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from nbdiag.outputs import manifest
from nbdiag.cli import main
from nbdiag.config import load_config
from nbdiag.demo.run import CONFIG
from nbdiag.participant.pipeline import run_participant


# --------------------------------------------------------------------------- fingerprints
def test_text_inputs_are_fingerprinted_by_their_bytes_not_their_time(tmp_path):
    assert manifest.fingerprint(None) is None
    f = tmp_path / "sub-01" / "events.tsv"
    f.parent.mkdir()
    f.write_text("onset\n1\n")
    link = tmp_path / "annexed.tsv"
    link.symlink_to(".git/annex/objects/Xk/3f/SHA256E-s8--abc.tsv/SHA256E-s8--abc.tsv")
    broken = tmp_path / "broken.tsv"
    broken.symlink_to("nowhere.tsv")
    fps = manifest.input_fingerprints({"events": f, "confounds": None, "annex": link, "broken": broken,
                                       "outside": Path("/definitely/not/here.tsv")}, tmp_path)
    assert fps["events"] == {"path": "sub-01/events.tsv", "exists": True, "size": 8,
                             "sha256": hashlib.sha256(b"onset\n1\n").hexdigest()}
    assert fps["annex"] == {"path": "annexed.tsv", "exists": False, "fetched": False,
                            "link": ".git/annex/objects/Xk/3f/SHA256E-s8--abc.tsv/SHA256E-s8--abc.tsv"}
    assert fps["broken"] == {"path": "broken.tsv", "exists": False, "link": "nowhere.tsv"}
    assert fps["outside"] == {"path": "here.tsv", "exists": False}  # outside root: name only
    assert "confounds" not in fps
    os.utime(f, ns=(1, 1))  # another time, same bytes: same fingerprint
    assert manifest.fingerprint(f) == {k: v for k, v in fps["events"].items() if k != "path"}
    copy = tmp_path / "elsewhere" / "events.tsv"
    copy.parent.mkdir()
    shutil.copy(f, copy)
    assert manifest.fingerprint(copy) == manifest.fingerprint(f)
    f.write_text("onset\n2\n")  # same size, other bytes
    assert manifest.fingerprint(f)["sha256"] == hashlib.sha256(b"onset\n2\n").hexdigest()


def _nifti(path: Path, data: np.ndarray, t_r: float = 2.0) -> Path:
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_zooms((2.0, 2.0, 2.0, t_r))
    nib.save(img, path)
    return path


@pytest.mark.parametrize("name", ["bold.nii", "bold.nii.gz"])
def test_images_are_fingerprinted_by_header_and_size_never_voxels(tmp_path, name):
    data = np.zeros((3, 3, 3, 5), dtype=np.float32)
    path = _nifti(tmp_path / name, data)
    first = manifest.fingerprint(path)
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    offset = int(nib.Nifti1Header.from_fileobj(io.BytesIO(raw))["vox_offset"])
    assert offset == 352  # 348-byte header + the 4-byte extension flag
    assert first == {"exists": True, "size": path.stat().st_size,
                     "header_sha256": hashlib.sha256(raw[:offset]).hexdigest()}
    if name == "bold.nii":  # other voxel values, same header and size: the same fingerprint
        _nifti(path, data + 7)
        assert manifest.fingerprint(path) == first
    _nifti(path, data, t_r=2.5)  # another header
    assert manifest.fingerprint(path)["header_sha256"] != first["header_sha256"]


@pytest.mark.parametrize("kind", ["nifti2", "big-endian"])
def test_nifti2_and_big_endian_headers_are_read_to_vox_offset(tmp_path, kind):
    data = np.zeros((2, 2, 2, 3), dtype=np.int16)
    if kind == "nifti2":
        img = nib.Nifti2Image(data, np.eye(4))
    else:
        img = nib.Nifti1Image(data, np.eye(4), header=nib.Nifti1Header(endianness=">"))
    path = tmp_path / "bold.nii"
    nib.save(img, path)
    raw = path.read_bytes()
    offset = int(type(img.header).from_fileobj(io.BytesIO(raw))["vox_offset"])
    assert offset == (544 if kind == "nifti2" else 352)
    assert manifest.fingerprint(path)["header_sha256"] == hashlib.sha256(raw[:offset]).hexdigest()


def test_images_without_a_nifti_header_and_unreadable_files(tmp_path):
    gii = tmp_path / "bold.func.gii"
    gii.write_bytes(b"<?xml" + b"x" * 10000)
    assert manifest.fingerprint(gii)["header_sha256"] == hashlib.sha256((b"<?xml" + b"x" * 10000)[:4096]).hexdigest()
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not gzip at all")
    assert manifest.fingerprint(bad)["header_sha256"] == hashlib.sha256(b"not gzip at all").hexdigest()
    short = tmp_path / "short.nii"
    short.write_bytes(b"\x5c\x01\x00\x00" + b"\x00" * 10)  # says 348 bytes, has 14
    assert manifest.fingerprint(short)["header_sha256"] == hashlib.sha256(short.read_bytes()).hexdigest()
    folder = tmp_path / "a-folder.tsv"  # exists, cannot be read as a file: said, not raised
    folder.mkdir()
    assert manifest.fingerprint(folder) == {"exists": True, "size": folder.stat().st_size,
                                            "unreadable": "IsADirectoryError"}


def test_input_changes_say_which_input_and_how(tmp_path):
    f = tmp_path / "sub-01" / "events.tsv"
    f.parent.mkdir()
    f.write_text("onset\n1\n")
    fps = manifest.input_fingerprints({"events": f}, tmp_path)
    assert manifest.check_inputs(fps, None) == []
    assert manifest.check_inputs(fps, tmp_path) == []
    old_sha = fps["events"]["sha256"]
    f.write_text("onset\n1\n2\n")
    new_sha = hashlib.sha256(b"onset\n1\n2\n").hexdigest()
    (tmp_path / "later.tsv").write_text("x")
    (tmp_path / "annexed.tsv").symlink_to(".git/annex/objects/x/y/K/K")
    recorded = {"events": fps["events"], "bad": "x", "abs": {"path": "/etc/passwd"},
                "up": {"path": "../x.tsv"}, "new": {"path": "later.tsv", "exists": False},
                "gone": {"path": "gone.tsv", "exists": True, "size": 1, "sha256": "ab"},
                "annexed": {"path": "annexed.tsv", "exists": True, "size": 1, "sha256": "ab"},
                "old": {"path": "later.tsv", "exists": True, "size": 1, "mtime_ns": 1}}
    changes = manifest.input_changes(recorded, tmp_path)
    assert [c["kind"] for c in changes] == ["changed", "malformed", "outside", "outside", "appeared",
                                            "vanished", "not_fetched", "unverifiable"]
    assert [c["message"] for c in changes] == [
        f"events sub-01/events.tsv: content changed since the audit (sha256 {old_sha[:12]}, 8 bytes -> "
        f"sha256 {new_sha[:12]}, 10 bytes)",
        "bad: malformed fingerprint",
        "abs /etc/passwd: path outside BIDS_DIR",
        "up ../x.tsv: path outside BIDS_DIR",
        "new later.tsv: appeared (or was fetched) since the audit",
        "gone gone.tsv: not found",
        "annexed annexed.tsv: not fetched (a git-annex/DataLad link without its content; `datalad get` it)",
        "old later.tsv: fingerprint without a content hash (written by an older nbdiag); rerun the "
        "participant level",
    ]
    assert manifest.check_inputs(recorded, tmp_path) == [c["message"] for c in changes]
    assert set(manifest.NOT_FOUND_KINDS) == {"vanished", "not_fetched"}


# --------------------------------------------------------------------------- copies of a dataset
def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _touch_all(folder: Path, seconds: int) -> None:
    for p in folder.rglob("*"):
        os.utime(p, (seconds, seconds), follow_symlinks=False)


@pytest.fixture(scope="module")
def two_copies(tmp_path_factory):
    """One dataset, a `cp -r` of it with other modification times, each audited (participant + group)."""
    from nbdiag.demo.synth import small_spec, write_dataset

    base = tmp_path_factory.mktemp("copies")
    first = write_dataset(base / "lab" / "bids", small_spec())
    second = base / "scratch" / "copy-of-bids"
    shutil.copytree(first, second, symlinks=True)
    _touch_all(second, 1_000_000_000)
    outs = []
    for root, out in ((first, base / "out-first"), (second, base / "elsewhere" / "out-second")):
        result = run_participant(root, out, load_config(CONFIG), reports=True, log=lambda line: None)
        assert result.n_errors == 0
        assert main([str(root), str(out), "group"]) in (0, 3)
        outs.append(out)
    return first, second, outs[0], outs[1]


def test_a_copy_with_new_times_audits_to_byte_identical_outputs(two_copies):
    _, _, out_first, out_second = two_copies
    a, b = _tree(out_first), _tree(out_second)
    assert sorted(a) == sorted(b)
    assert any(k.endswith("_nbdiag.json") for k in a) and "group/signoff.tsv" in a and "group.html" in a
    assert any(k.startswith("sub-") and k.endswith(".html") for k in a)
    different = [k for k in a if a[k] != b[k]]
    assert different == []


def test_group_accepts_the_records_of_either_copy(two_copies, tmp_path, capsys):
    first, second, out_first, out_second = two_copies
    for bids, out in ((second, out_first), (first, out_second)):
        work = tmp_path / out.name
        shutil.copytree(out, work)
        before = _tree(work)
        capsys.readouterr()
        assert main([str(bids), str(work), "group"]) in (0, 3)
        err = capsys.readouterr().err
        assert "refused" not in err and "not found" not in err
        assert _tree(work) == before  # the same sign-off, byte for byte


# --------------------------------------------------------------------------- group: nothing unjustified
def test_group_pointed_at_a_wrong_folder_changes_nothing(two_copies, tmp_path, capsys):
    _, _, out_first, _ = two_copies
    work = tmp_path / "out"
    shutil.copytree(out_first, work)
    before = _tree(work)
    wrong = tmp_path / "not-the-dataset"
    wrong.mkdir()
    for bids in (wrong, tmp_path / "does-not-exist"):
        capsys.readouterr()
        assert main([str(bids), str(work), "group"]) == 2
        err = capsys.readouterr().err
        assert f"are not found under BIDS_DIR {bids}" in err and "Nothing in OUTPUT_DIR was changed" in err
        assert "events sub-01/ses-1/func/sub-01_ses-1_task-nback_run-01_events.tsv: not found" in err
        assert "Traceback" not in err
        assert _tree(work) == before


def test_group_on_an_unfetched_copy_changes_nothing_and_says_not_fetched(two_copies, tmp_path, capsys):
    first, _, out_first, _ = two_copies
    work, bids = tmp_path / "out", tmp_path / "clone"
    shutil.copytree(out_first, work)
    shutil.copytree(first, bids)
    rel = "sub-02/func/sub-02_task-nback_run-01_events.tsv"
    (bids / rel).unlink()
    (bids / rel).symlink_to("../../.git/annex/objects/Pq/Wx/MD5E-s977--0a.tsv/MD5E-s977--0a.tsv")
    before = _tree(work)
    assert main([str(bids), str(work), "group"]) == 2
    err = capsys.readouterr().err
    assert f"events {rel}: not fetched" in err and "datalad get" in err
    assert _tree(work) == before
    # --allow-incomplete: the others are signed off, the unfetched run is listed as refused
    assert main([str(bids), str(work), "group", "--allow-incomplete"]) == 1
    missing = (work / "group" / "nbdiag_missing.tsv").read_text()
    assert "not fetched" in missing and "sub-02_task-nback_run-01_desc-nortdur_nbdiag.json" in missing


def test_group_after_a_real_change_names_the_input_and_moves_the_old_signoff(two_copies, tmp_path, capsys):
    first, _, out_first, _ = two_copies
    work, bids = tmp_path / "out", tmp_path / "edited"
    shutil.copytree(out_first, work)
    shutil.copytree(first, bids)
    rel = "sub-02/func/sub-02_task-nback_run-01_events.tsv"
    old = (bids / rel).read_bytes()
    new = old.replace(b"2BACK", b"0BACK", 1)
    assert new != old and len(new) == len(old)
    (bids / rel).write_bytes(new)
    before = _tree(work)
    assert main([str(bids), str(work), "group"]) == 2
    err = capsys.readouterr().err
    how = (f"events {rel}: content changed since the audit (sha256 {hashlib.sha256(old).hexdigest()[:12]}, "
           f"{len(old)} bytes -> sha256 {hashlib.sha256(new).hexdigest()[:12]}, {len(new)} bytes)")
    assert how in err and "moved to" in err
    after = _tree(work)
    # no sign-off that looks valid is left: the earlier outputs moved, unchanged, under group/stale/
    for rel_out in ("group/signoff.tsv", "group/include.tsv", "group/nbdiag_runs.tsv", "group.html"):
        assert rel_out not in after
        assert after[f"group/stale/{Path(rel_out).name}"] == before[rel_out]
    note = after["group/stale/README.txt"].decode()
    assert "NOT a" in note and how in note and "group/signoff.tsv" in note
    assert how in after["group/nbdiag_missing.tsv"].decode()
    # the records themselves are untouched
    assert {k: v for k, v in after.items() if k.startswith("sub-")} == {
        k: v for k, v in before.items() if k.startswith("sub-")}
    # a second refused run has nothing left to move: the note stays as it was
    assert main([str(bids), str(work), "group"]) == 2
    assert _tree(work)["group/stale/README.txt"] == after["group/stale/README.txt"]


# --------------------------------------------------------------------------- --work-dir
def test_work_dir_takes_new_times_for_content_and_redoes_only_real_changes(tmp_path):
    from nbdiag.demo.synth import small_spec, write_dataset

    bids = write_dataset(tmp_path / "bids", small_spec())
    out, work = tmp_path / "out", tmp_path / "work"
    config = load_config(CONFIG)
    first = run_participant(bids, out, config, reports=False, log=lambda line: None, work_dir=work)
    n = sum(first.counts.values()) // 3
    _touch_all(bids, 1_500_000_000)  # new times, same bytes: every input hashed again, nothing redone
    again = run_participant(bids, out, config, reports=False, log=lambda line: None, work_dir=work)
    assert again.n_unchanged == n
    events = bids / "sub-02/func/sub-02_task-nback_run-01_events.tsv"
    events.write_bytes(events.read_bytes().replace(b"2BACK", b"0BACK", 1))
    third = run_participant(bids, out, config, reports=False, log=lambda line: None, work_dir=work)
    assert third.n_unchanged == n - 1
