"""BOLD mode: effect maps equal nilearn's OLS effect_size; class maps sum to them."""

import json
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, layout, split  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.baseline import assess_baseline
from nbdiag.measure.effect_maps import effect_maps, summarize_parts
from nbdiag.measure.images import find_inputs, mask_for, stream_masked
from nbdiag.measure.bold import camel_name
from nbdiag.core.thresholds import Thresholds

N = 200


def _nilearn_effects(img, mask_img, X, vectors):
    from nilearn.glm.first_level import FirstLevelModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FirstLevelModel(mask_img=mask_img, noise_model="ols", signal_scaling=0, minimize_memory=True,
                                t_r=T_R)
        model.fit(img, design_matrices=[X])
        return {k: model.compute_contrast(v, output_type="effect_size").get_fdata() for k, v in vectors.items()}


def test_effect_maps_equal_nilearn_ols_and_classes_sum(tmp_path):
    ev, _ = layout(N, between_fix=21.0)
    ev = ev[ev.onset < N * T_R - 20]
    keep, un = split(ev, drop=("fixation", "INSTRUCTION"))
    X, roles = build(keep, N, high_pass=0.01)
    ctx = DesignContext(t_r=T_R, events=keep, unmodeled_events=un, high_pass=0.01, nonsteady_volumes=(0, 1))
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    rng = np.random.default_rng(0)
    shape = (4, 3, 5)
    base = rng.uniform(300, 900, size=shape)
    gain = rng.normal(0, 0.02, size=shape)  # per-voxel task response (fraction)
    data = base[..., None] * (1 + gain[..., None] * X["zero_back"].to_numpy()[None, None, None, :]
                              + 0.01 * rng.standard_normal(shape + (N,)))
    data[..., :2] *= 1.3  # bright non-steady-state volumes
    mask = np.ones(shape, dtype=bool)
    mask[0, 0, :] = False
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    mask_img = nib.Nifti1Image(mask.astype(np.int8), img.affine)
    cols = list(X.columns)
    vectors = {"zero_back": np.array([c == "zero_back" for c in cols], float),
               "two_back - zero_back": np.array([(c == "two_back") - (c == "zero_back") for c in cols], float)}
    pinv = np.linalg.pinv(X.to_numpy())
    spec = {"default": {"weights": {k: pinv.T @ v for k, v in vectors.items()}, "scan_classes": classes,
                        "rows": list(range(N))}}
    Y = data[mask].T  # volumes x voxels
    plan, parts = effect_maps(Y, spec, chunk=37)
    ref = _nilearn_effects(img, mask_img, X, vectors)
    for name in vectors:
        p = parts[("default", name)]
        np.testing.assert_allclose(p.sum(axis=1), ref[name][mask], atol=1e-6)
        assert plan.classes[("default", name)][0] == "nonsteady"
    # bright first volumes lower zero_back in every voxel
    assert (parts[("default", "zero_back")][:, 0] < 0).all()
    s = summarize_parts(parts[("default", "zero_back")], plan.classes[("default", "zero_back")])
    assert sum(v["mask_share"] for v in s["by_class"].values()) == pytest.approx(1.0)
    assert s["negative_tail"]["n_voxels"] >= 1
    # streaming from disk in blocks gives the same numbers
    nib.save(img, tmp_path / "x_bold.nii.gz")
    Ys = np.concatenate([y for _, y in stream_masked(tmp_path / "x_bold.nii.gz", mask, chunk_volumes=16)])
    np.testing.assert_allclose(Ys, Y)


def test_camel_names_match_nilearn():
    assert camel_name("two_back - zero_back") == "twoBackMinusZeroBack"
    assert camel_name("zero_back") == "zeroBack"


def test_missing_mask_and_broken_link_are_notes(tmp_path):
    bold = tmp_path / "sub-01_task-x_space-MNI_desc-preproc_bold.nii.gz"
    assert mask_for(bold).name == "sub-01_task-x_space-MNI_desc-brain_mask.nii.gz"
    bold.symlink_to(tmp_path / ".git" / "annex" / "objects" / "missing")
    assert "datalad get" in find_inputs(bold).note
    bold.unlink()
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), bold)
    assert "no brain mask" in find_inputs(bold).note


def test_participant_measure_bold_writes_maps_equal_to_nilearn(make_bids, tmp_path):
    from nbdiag.cli import main
    from nbdiag.demo.synth import DatasetSpec, RunSpec
    from nbdiag.group.pipeline import run_group

    spec = DatasetSpec([RunSpec("01", session="1", run=1, n_scans=120, t_r=2.0, n_nonsteady=2)])
    root = make_bids(tmp_path, spec)
    out = tmp_path / "out"
    code = main([str(root), str(out), "participant", "--task", "nback", "--space", spec.space,
                 "--derivatives", spec.derivatives, "--img-filter", "desc", "preproc",
                 "--events-rename", "0BACK=zero_back", "--events-rename", "2BACK=two_back",
                 "--confounds-strategy", "motion", "non_steady_state", "--confounds-motion", "basic",
                 "--contrast", "zero_back", "--contrast", "two_back - zero_back", "--measure", "bold"])
    assert code == 0
    rec_path = next(out.rglob("*_nbdiag.json"))
    record = json.loads(rec_path.read_text())
    bold = record["measured"]["bold"]
    assert bold["status"] == "measured", bold
    stat = out / bold["contrasts"]["zero_back"]["statmap"]
    cls = out / bold["contrasts"]["zero_back"]["classes_map"]
    assert stat.name.endswith("_desc-default_contrast-zeroBack_stat-effect_statmap.nii.gz")
    assert cls.name.endswith("_contrast-zeroBack_stat-effect_classes.nii.gz")
    sidecar = json.loads(cls.with_name(cls.name.replace(".nii.gz", ".json")).read_text())
    eff, parts = nib.load(stat).get_fdata(), nib.load(cls).get_fdata()
    assert parts.shape[3] == len(sidecar["Classes"])
    np.testing.assert_allclose(parts.sum(axis=3), eff, atol=1e-5)
    # nilearn's OLS fit of the same image with the rebuilt design
    design = pd.read_csv(rec_path.with_name(rec_path.name.replace("_nbdiag.json", "_design.tsv")), sep="\t")
    from nbdiag.demo.synth import run_paths

    found = find_inputs(run_paths(root, spec, spec.runs[0]).bold)
    vec = np.array([record["contrasts"]["zero_back"]["vector"][c] for c in design.columns])
    ref = _nilearn_effects(nib.load(found.bold), nib.load(found.mask), design, {"zero_back": vec})["zero_back"]
    np.testing.assert_allclose(eff, ref, atol=1e-5)
    html = (out / "sub-01.html").read_text()
    assert "Measured from this run" in html and "glass brain of the largest class map" in html
    assert run_group(out) in (0, 3)
    assert (out / "group" / "nbdiag_attribution.tsv").read_text().startswith(
        "variant\tcontrast\tsource\tn_subjects\tmean\tsem\tt\tshare\tkind\tdistinct\n")   # issue 20 columns
