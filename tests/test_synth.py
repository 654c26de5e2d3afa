"""Tests of the synthetic BIDS/fMRIPrep generator (nbdiag.demo.synth)."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import first_level_from_bids
from nilearn.interfaces.fmriprep import load_confounds

from nbdiag.demo.synth import (
    DatasetSpec,
    EventsRecipe,
    RunSpec,
    confounds_columns,
    nback_events,
    run_paths,
    small_spec,
    with_runs,
    write_dataset,
)

NILEARN_DATA = Path(load_confounds.__code__.co_filename).parent / "data"


def _files(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = ("-> " + os.readlink(p)) if p.is_symlink() else p.read_bytes()
    return out


# --------------------------------------------------------------------- events
def test_nback_events_like_the_study() -> None:
    ev = nback_events(seed=3)
    assert list(ev.columns) == ["onset", "duration", "trial_type", "response_time"]
    counts = ev["trial_type"].value_counts()
    assert counts["0BACK"] == 60 and counts["2BACK"] == 60 and counts["INSTRUCTION"] == 6
    assert "fixation" not in counts
    trials = ev[ev["trial_type"] != "INSTRUCTION"]
    assert np.allclose(trials["duration"], 2.4)
    assert np.allclose(ev.loc[ev["trial_type"] == "INSTRUCTION", "duration"], 9.6)
    # each instruction screen is followed by 20 trials of one condition
    instr = np.flatnonzero(ev["trial_type"] == "INSTRUCTION")
    for i in instr:
        block = ev.iloc[i + 1 : i + 21]
        assert block["trial_type"].nunique() == 1
        assert np.isclose(block["onset"].iloc[0], ev["onset"].iloc[i] + 9.6)
    assert ev.loc[ev["trial_type"] == "INSTRUCTION", "response_time"].isna().all()
    rt = trials["response_time"]
    assert 0.7 < rt.notna().mean() < 1.0
    assert (rt.dropna() > 0).all() and (rt.dropna() < 2.4).all()
    end = ev["onset"].iloc[-1] + ev["duration"].iloc[-1]
    assert np.isclose(416.0 - end, 32.0)  # fixation at the end of a 520 x 0.8 s run
    task_time = 6 * (9.6 + 48.0)
    assert np.isclose(416.0 - task_time, 70.4)  # ~72 s of fixation in total
    pd.testing.assert_frame_equal(ev, nback_events(seed=3))


def test_nback_events_options_and_errors() -> None:
    ev = nback_events(include_fixation=True, first_onset=4.0, fixation_s=12.0)
    fix = ev[ev["trial_type"] == "fixation"]
    assert len(fix) == 7 and np.isclose(fix["duration"].sum(), 4.0 + 6 * 12.0)
    ev = nback_events(block_order=["2BACK"] * 6)
    assert set(ev["trial_type"]) == {"2BACK", "INSTRUCTION"}
    with pytest.raises(ValueError, match="whole number"):
        nback_events(block_s=47.0)
    with pytest.raises(ValueError, match="fixation_s"):
        nback_events(fixation_s=(1.0, 2.0))


# ---------------------------------------------------------------------- specs
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(subject="../x"), "subject"),
        (dict(subject="01", session="a_b"), "session"),
        (dict(subject="01", image="nope"), "image"),
        (dict(subject="01", start_time=3.0, t_r=2.0), "start_time"),
        (dict(subject="01", n_scans=100, motion_outliers=(100,)), "motion_outliers"),
        (dict(subject="01", n_nonsteady=4, motion_outliers=(2,)), "motion_outliers"),
        (dict(subject="01", n_acompcor=3), "n_acompcor"),
    ],
)
def test_runspec_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RunSpec(**kwargs)


def test_datasetspec_validation() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        DatasetSpec([RunSpec("01", run=1), RunSpec("01", run=1)])
    with pytest.raises(ValueError, match="derivatives"):
        DatasetSpec([RunSpec("01")], derivatives="../fmriprep")
    assert RunSpec("01", session="2", run=3, acq="X").prefix == "sub-01_ses-2_task-nback_acq-X_run-03"


# -------------------------------------------------------------------- writing
def test_layout_and_sidecars(small_bids: Path, small_spec: DatasetSpec) -> None:
    root = small_bids
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] and desc["DatasetType"] == "raw"
    deriv = json.loads((root / "derivatives/fmriprep/dataset_description.json").read_text())
    assert deriv["GeneratedBy"][0]["Name"] == "fMRIPrep"
    assert json.loads((root / "task-nback_bold.json").read_text())["RepetitionTime"] == 2.0
    part = pd.read_csv(root / "participants.tsv", sep="\t")
    assert list(part["participant_id"]) == ["sub-01", "sub-02"]
    for run in small_spec.runs:
        p = run_paths(root, small_spec, run)
        for f in (p.raw_bold, p.events, p.bold, p.bold_sidecar, p.mask,
                  p.confounds, p.confounds_sidecar):
            assert f.is_file(), f
        side = json.loads(p.bold_sidecar.read_text())
        assert side["RepetitionTime"] == run.t_r
        assert side.get("StartTime") == run.start_time
        assert p.raw_sidecar.is_file() == (run.start_time is not None)
        img = nib.load(p.bold)
        assert img.shape == (*run.shape, run.n_scans)
        assert np.isclose(img.header.get_zooms()[3], run.t_r)
        ev = pd.read_csv(p.events, sep="\t")
        assert ("INSTRUCTION" in set(ev["trial_type"])) != run.drop_instruction
    assert "space-MNI152NLin6Asym_res-2_desc-preproc_bold" in p.bold.name


def test_confounds_like_fmriprep(small_bids: Path, small_spec: DatasetSpec) -> None:
    run = small_spec.runs[3]  # 3 non-steady volumes, motion outlier at 50
    p = run_paths(small_bids, small_spec, run)
    conf = pd.read_csv(p.confounds, sep="\t")
    assert list(conf.columns) == confounds_columns(run)
    assert len(conf) == run.n_scans
    ref = pd.read_csv(NILEARN_DATA / "test-v21_desc-confounds_timeseries.tsv", sep="\t", nrows=1)
    ours_main = [c for c in conf.columns if "comp_cor" not in c and "outlier" not in c
                 and not c.startswith("cosine")]
    ref_main = [c for c in ref.columns if "comp_cor" not in c and "outlier" not in c
                and not c.startswith("cosine")]
    assert ours_main == ref_main  # same names, same order as real fMRIPrep output
    assert sum(c.startswith("a_comp_cor_") for c in conf.columns) >= 6
    first = conf.iloc[0]
    nan_cols = [c for c in conf.columns if "derivative1" in c] + [
        "framewise_displacement", "dvars", "std_dvars", "rmsd"]
    assert first[nan_cols].isna().all()
    assert conf.iloc[1:].notna().all().all()
    nss = conf.filter(like="non_steady_state_outlier").to_numpy()
    assert nss.shape[1] == 3 and np.array_equal(nss[:3], np.eye(3)) and nss[3:].sum() == 0
    mo = conf.filter(like="motion_outlier").to_numpy()
    assert mo.shape[1] == 1 and mo[50, 0] == 1 and mo.sum() == 1
    fd = conf["framewise_displacement"]
    assert fd[50] > 0.5 and fd.drop(index=50).max() < 0.3
    assert (conf.filter(like="comp_cor").iloc[:3] == 0).all().all()
    meta = json.loads(p.confounds_sidecar.read_text())
    assert meta["a_comp_cor_00"]["Mask"] == "combined"
    assert meta["w_comp_cor_00"]["Mask"] == "WM" and meta["c_comp_cor_00"]["Mask"] == "CSF"
    assert meta["t_comp_cor_00"]["Method"] == "tCompCor"
    for key in ("Method", "Retained", "SingularValue", "VarianceExplained",
                "CumulativeVarianceExplained"):
        assert key in meta["a_comp_cor_00"]


def test_load_confounds_sample_masks(small_bids: Path, small_spec: DatasetSpec) -> None:
    run = small_spec.runs[3]
    bold = str(run_paths(small_bids, small_spec, run).bold)
    conf, mask = load_confounds(bold, strategy=("motion", "non_steady_state"))
    assert np.array_equal(mask, np.arange(3, run.n_scans))
    conf, mask = load_confounds(bold, strategy=("motion", "scrub"))
    assert 50 not in mask and set(range(3)).isdisjoint(mask)
    assert len(mask) == run.n_scans - 3 - 1
    conf, mask = load_confounds(str(run_paths(small_bids, small_spec, small_spec.runs[2]).bold),
                                strategy=("motion", "scrub"))
    assert mask is None  # clean run: nothing scrubbed, nothing non-steady


def test_task_correlated_motion(small_bids: Path, small_spec: DatasetSpec) -> None:
    from nbdiag.demo.synth.confounds import _block_indicator

    for run, expected in ((small_spec.runs[4], 0.5), (small_spec.runs[2], 0.0)):
        p = run_paths(small_bids, small_spec, run)
        conf = pd.read_csv(p.confounds, sep="\t")
        ev = pd.read_csv(p.events, sep="\t")
        box = _block_indicator(ev, np.arange(run.n_scans) * run.t_r, "2BACK")
        r_z = np.corrcoef(conf["trans_z"], box)[0, 1]
        r_fd = np.corrcoef(conf["framewise_displacement"][1:], box[1:])[0, 1]
        assert abs(r_z - expected) < (0.05 if expected else 0.4)
        if expected:
            assert abs(r_fd - expected) < 0.05


def test_deterministic(tmp_path: Path) -> None:
    spec = small_spec()
    spec = replace(spec, runs=[*spec.runs[:2], replace(spec.runs[2], image="missing"),
                               replace(spec.runs[3], image="header"),
                               replace(spec.runs[4], image="broken")])
    a = _files(write_dataset(tmp_path / "a", spec))
    b = _files(write_dataset(tmp_path / "b", spec))
    assert a == b
    # regenerating in place gives the same files again
    c = _files(write_dataset(tmp_path / "a", spec))
    assert a == c


def test_image_modes(tmp_path: Path) -> None:
    spec = with_runs(small_spec(), shape=(5, 6, 7))
    spec = replace(spec, runs=[replace(spec.runs[0], image="header"),
                               replace(spec.runs[1], image="missing"),
                               replace(spec.runs[2], image="broken"),
                               replace(spec.runs[3], image="tiny")], )
    root = write_dataset(tmp_path / "bids", spec)
    hdr, missing, broken, tiny = (run_paths(root, spec, r) for r in spec.runs[:4])
    img = nib.load(hdr.bold)
    assert img.shape == (5, 6, 7, 120)
    assert np.isclose(img.header.get_zooms()[3], 2.0)
    with pytest.raises(Exception):
        img.get_fdata()
    assert hdr.bold.stat().st_size < 1000
    assert nib.load(hdr.mask).shape == (5, 6, 7)
    for f in (missing.bold, missing.raw_bold, missing.mask):
        assert f.is_symlink() and not f.exists()
        assert ".git/annex/objects/" in os.readlink(f)
        assert os.path.abspath(os.path.join(f.parent, os.readlink(f))).startswith(str(root))
    assert missing.confounds.is_file() and missing.bold_sidecar.is_file()
    with pytest.raises(Exception):
        nib.load(broken.bold).get_fdata()
    assert nib.load(tiny.bold).get_fdata().shape == (5, 6, 7, 110)


def test_explicit_events_table(tmp_path: Path) -> None:
    ev = pd.DataFrame({"onset": [10.0, 40.0], "duration": [20.0, 20.0],
                       "trial_type": ["0BACK", "2BACK"]})
    spec = DatasetSpec([RunSpec("01", n_scans=40, t_r=2.0, events=ev)])
    root = write_dataset(tmp_path / "bids", spec)
    got = pd.read_csv(run_paths(root, spec, spec.runs[0]).events, sep="\t")
    pd.testing.assert_frame_equal(got, ev)
    spec = DatasetSpec([RunSpec("01", n_scans=40, t_r=2.0,
                                events=EventsRecipe(n_blocks=2, block_s=12.0, fixation_s=4.0))])
    write_dataset(tmp_path / "bids2", spec)


def test_never_writes_outside_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "bids"
    root.mkdir()
    (root / "sub-01").symlink_to(outside, target_is_directory=True)
    spec = DatasetSpec([RunSpec("01", n_scans=30, t_r=2.0,
                                events=EventsRecipe(n_blocks=1, block_s=12.0, fixation_s=4.0))])
    with pytest.raises(ValueError, match="outside"):
        write_dataset(root, spec)
    assert list(outside.iterdir()) == []


# ------------------------------------------------------- nilearn round trip
def _diff_contrast(dm: pd.DataFrame) -> np.ndarray:
    """2BACK - 0BACK as a vector over the design's columns."""
    return (dm.columns == "2BACK").astype(float) - (dm.columns == "0BACK").astype(float)


STRATEGIES = [
    (("motion",), {"confounds_motion": "basic"}, 6),
    (("motion",), {"confounds_motion": "full"}, 24),
    (("motion", "non_steady_state"), {"confounds_motion": "basic"}, 6),
    (("wm_csf",), {"confounds_wm_csf": "full"}, 8),
    (("global_signal",), {}, 1),
    (("high_pass", "compcor"), {"confounds_compcor": "anat_combined",
                                "confounds_n_compcor": 5}, None),
    (("high_pass", "compcor"), {"confounds_compcor": "temporal_anat_separated"}, None),
    (("motion", "scrub"), {"confounds_motion": "basic"}, 6),
]


@pytest.mark.parametrize("strategy, kwargs, n_conf", STRATEGIES,
                         ids=["-".join(s) + "-" + "-".join(map(str, k.values()))
                              for s, k, _ in STRATEGIES])
def test_first_level_from_bids_fits(
    small_bids: Path, small_spec: DatasetSpec, strategy: tuple, kwargs: dict,
    n_conf: int | None,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            small_bids, "nback", space_label=small_spec.space,
            img_filters=[("desc", "preproc")],
            derivatives_folder=small_spec.derivatives,
            confounds_strategy=strategy, mask_img="derivatives", **kwargs,
        )
        assert [m.subject_label for m in models] == ["01", "02"]
        assert [len(i) for i in imgs] == [4, 1]  # sessions, runs and acq- found
        assert models[0].t_r == 2.0
        for model, run_imgs, run_events, run_confs in zip(models, imgs, events, confounds):
            if isinstance(run_confs, pd.DataFrame):
                # nilearn quirk: a subject with ONE run gets a bare DataFrame
                # (load_confounds un-lists single results), not a list
                assert len(run_imgs) == 1
                run_confs = [run_confs]
            assert [len(c) for c in run_confs] == [nib.load(i).shape[3] for i in run_imgs]
            if n_conf is not None:
                assert all(c.shape[1] == n_conf for c in run_confs)
            model.fit(run_imgs, events=run_events, confounds=run_confs)
            for dm, ev in zip(model.design_matrices_, run_events):
                assert "0BACK" in dm.columns and "2BACK" in dm.columns
                assert ("INSTRUCTION" in dm.columns) == ("INSTRUCTION" in set(ev["trial_type"]))
            # '2BACK' is not a Python identifier: use contrast vectors
            cons = [_diff_contrast(dm) for dm in model.design_matrices_]
            eff = model.compute_contrast(cons, output_type="effect_size")
            assert np.isfinite(eff.get_fdata()).all()
    if "compcor" in strategy:
        cols = set(confounds[0][0].columns) | set(confounds[1].columns)
        assert any(c.startswith("cosine") for c in cols)
        if kwargs["confounds_compcor"] == "anat_combined":
            assert {f"a_comp_cor_{i:02d}" for i in range(5)} <= cols
        else:
            assert {"t_comp_cor_00", "c_comp_cor_00", "w_comp_cor_00"} <= cols


def test_first_level_recovers_task_effect(tmp_path: Path) -> None:
    """The tiny images carry the simulated 2BACK > 0BACK > 0 responses."""
    spec = DatasetSpec([RunSpec("01", n_scans=200, t_r=2.0, shape=(2, 2, 2))])
    root = write_dataset(tmp_path / "bids", spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confs = first_level_from_bids(
            root, "nback", space_label=spec.space, img_filters=[("desc", "preproc")],
            derivatives_folder=spec.derivatives, confounds_strategy=("motion",),
            mask_img="derivatives", signal_scaling=0,
        )
        model = models[0].fit(imgs[0], events=events[0], confounds=confs[0])
        con = _diff_contrast(model.design_matrices_[0])
        z = model.compute_contrast(con, output_type="z_score").get_fdata()
    assert (z > 2).all()


# ------------------------------------------------------------- bundled demo
def test_demo_regenerates_identically(tmp_path: Path, demo_bids: Path) -> None:
    import gzip
    import zlib

    from nbdiag.demo.make_demo import main

    assert main([str(tmp_path / "demo")]) == 0
    fresh, committed = _files(tmp_path / "demo"), _files(demo_bids)
    assert sorted(fresh) == sorted(committed)
    for name, data in committed.items():
        if name.endswith(".gz") and fresh[name] != data:
            # another zlib build may compress differently: the content must not
            assert gzip.decompress(fresh[name]) == gzip.decompress(data), name
            warnings.warn(f"{name}: same content, different gzip bytes "
                          f"(zlib {zlib.ZLIB_RUNTIME_VERSION})")
        else:
            assert fresh[name] == data, name


def test_demo_is_small_and_header_only(demo_bids: Path) -> None:
    from nbdiag.demo.make_demo import demo_spec

    total = sum(f.stat().st_size for f in demo_bids.rglob("*") if f.is_file())
    assert total < 3_000_000
    spec = demo_spec()
    for run in spec.runs:
        p = run_paths(demo_bids, spec, run)
        for f in (p.bold, p.raw_bold):
            img = nib.load(f)
            assert img.shape == (91, 109, 91, run.n_scans)
            assert np.isclose(img.header.get_zooms()[3], 0.8)
        with pytest.raises(ValueError):  # header only: no voxel data
            nib.load(p.bold).dataobj[0, 0, 0, 0]
        assert nib.load(p.mask).get_fdata().sum() > 1000


def test_demo_subjects_show_their_situation(demo_bids: Path) -> None:
    from nbdiag.demo.make_demo import demo_spec
    from nbdiag.demo.synth.confounds import _block_indicator

    spec = demo_spec()
    by = {run.prefix: run_paths(demo_bids, spec, run) for run in spec.runs}
    conf = {k: pd.read_csv(p.confounds, sep="\t") for k, p in by.items()}
    ev = {k: pd.read_csv(p.events, sep="\t") for k, p in by.items()}
    for k in by:
        n_nss = conf[k].filter(like="non_steady_state_outlier").shape[1]
        assert n_nss == (4 if k.startswith("sub-01") else 0), k
        assert ("INSTRUCTION" in set(ev[k]["trial_type"])) == (k != "sub-02_ses-2_task-nback_run-01")
        assert len(conf[k]) == (500 if "acq-VARIANTObliquity" in k else 520)
        assert ev[k]["response_time"].notna().sum() > 90
        assert set(ev[k]["trial_type"]) <= {"0BACK", "2BACK", "INSTRUCTION"}
    k3 = "sub-03_ses-1_task-nback_run-01"
    box = _block_indicator(ev[k3], np.arange(520) * 0.8, "2BACK")
    assert abs(np.corrcoef(conf[k3]["trans_z"], box)[0, 1] - 0.5) < 0.05
    assert abs(np.corrcoef(conf[k3]["framewise_displacement"][1:], box[1:])[0, 1] - 0.5) < 0.05
    assert conf[k3].filter(like="motion_outlier").shape[1] == 2
    for k in by:
        if k != k3:
            box = _block_indicator(ev[k], np.arange(len(conf[k])) * 0.8, "2BACK")
            assert abs(np.corrcoef(conf[k]["trans_z"], box)[0, 1]) < 0.3, k
    # sub-05: fixation between every pair of blocks (>= 11 s gaps)
    e5 = ev["sub-05_ses-1_task-nback_run-01"]
    instr = e5.loc[e5["trial_type"] == "INSTRUCTION", "onset"].to_numpy()
    assert np.allclose(np.diff(instr), 9.6 + 48.0 + 11.2)


def test_demo_with_first_level_from_bids(demo_bids: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            demo_bids, "nback", space_label="MNI152NLin6Asym",
            img_filters=[("desc", "preproc")],
            derivatives_folder="derivatives/fmriprep",
            confounds_strategy=("motion", "non_steady_state"),
            confounds_motion="basic", drift_model="cosine", high_pass=0.005,
        )
    assert [m.subject_label for m in models] == ["01", "02", "03", "04", "05"]
    assert [len(i) for i in imgs] == [1, 2, 1, 2, 1]
    assert models[0].t_r == 0.8 and models[0].slice_time_ref == 0.5
    confs = [c for cs in confounds for c in (cs if isinstance(cs, list) else [cs])]
    runs = [i for ii in imgs for i in ii]
    assert [len(c) for c in confs] == [nib.load(i).shape[3] for i in runs]


def test_make_demo_refuses_foreign_folder(tmp_path: Path) -> None:
    from nbdiag.demo.make_demo import main, make_demo

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        make_demo(tmp_path / "mine")
    assert main([str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"
    out = make_demo(tmp_path / "demo")
    assert make_demo(out) == out  # an earlier demo is replaced
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
