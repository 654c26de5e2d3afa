"""Simulated images: tiny fittable 4D NIfTIs, header-only images, masks, DataLad annex links.

Part of :mod:`nbdiag.demo.synth` (see its docstring for the determinism rules).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from nbdiag.demo.synth.specs import RunSpec

# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def _affine(shape: tuple[int, int, int]) -> np.ndarray:
    """2 mm voxels, MNI-like origin (FSL 2 mm template for 91x109x91)."""
    aff = np.diag([-2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [2.0 * (shape[0] - 1) / 2, -2.0 * (shape[1] - 1) / 2 - 18.0,
                  -2.0 * (shape[2] - 1) / 2 + 18.0]
    return aff


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


def _nifti_bytes(img: nib.Nifti1Image) -> bytes:
    return _gzip(img.to_bytes())


def _header_only_bytes(shape4d: tuple[int, ...], t_r: float) -> bytes:
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(shape4d)
    hdr.set_zooms((2.0, 2.0, 2.0, float(t_r)))
    hdr.set_xyzt_units("mm", "sec")
    aff = _affine(shape4d[:3])  # type: ignore[arg-type]
    hdr.set_qform(aff, code=4)
    hdr.set_sform(aff, code=4)
    hdr["descrip"] = b"nbdiag header-only: voxel data omitted"
    hdr.set_data_offset(352)
    raw = hdr.binaryblock + b"\x00\x00\x00\x00"  # no extensions, no voxels
    return _gzip(raw)


def _mask_img(shape: tuple[int, int, int]) -> nib.Nifti1Image:
    if min(shape) <= 4:
        data = np.ones(shape, dtype=np.uint8)
    else:  # an ellipsoid "brain"
        grid = np.indices(shape, dtype=float)
        c = (np.array(shape, dtype=float) - 1) / 2
        r = np.array(shape, dtype=float) * 0.42
        d = sum(((grid[i] - c[i]) / r[i]) ** 2 for i in range(3))
        data = (d <= 1.0).astype(np.uint8)
    img = nib.Nifti1Image(data, _affine(shape))
    img.header.set_xyzt_units("mm", "sec")
    return img


def _tiny_bold(
    run: RunSpec, events: pd.DataFrame, confounds: pd.DataFrame,
    rng: np.random.Generator,
) -> nib.Nifti1Image:
    """Simulated BOLD: baseline 1000, task responses, drift, noise, motion."""
    from nilearn.glm.first_level import make_first_level_design_matrix  # lazy: nilearn.glm, for "tiny" images only

    n = run.n_scans
    start = 0.0 if run.start_time is None else float(run.start_time)
    frame_times = np.arange(n) * run.t_r + start
    ev = events[["onset", "duration", "trial_type"]]
    dm = make_first_level_design_matrix(
        frame_times, ev, hrf_model="glover", drift_model=None
    )
    betas = {"0BACK": 1.0, "2BACK": 1.5, "INSTRUCTION": 0.8}
    if run.betas is not None:
        betas.update(run.betas)
    signal = np.zeros(n)
    for cond, beta in betas.items():
        if cond in dm.columns:
            signal += beta * dm[cond].to_numpy()
    n_vox = int(np.prod(run.shape))
    gain = rng.uniform(0.5, 1.5, n_vox)
    base = 1000.0 * rng.uniform(0.8, 1.2, n_vox)
    drift = np.linspace(-1.0, 1.0, n)[:, None] * rng.normal(0, 2.0, n_vox)
    excess = np.zeros(n)
    excess[: run.n_nonsteady] = 0.3 * np.exp(-np.arange(run.n_nonsteady) / 1.5)
    motion = confounds["trans_z"].to_numpy() - confounds["trans_z"].mean()
    data = (
        base * (1.0 + excess[:, None] + 0.01 * signal[:, None] * gain)
        + drift
        + 20.0 * motion[:, None]
        + rng.normal(0.0, 3.0, (n, n_vox))
    )
    vol = data.T.reshape(*run.shape, n).astype(np.float32)
    img = nib.Nifti1Image(vol, _affine(run.shape))
    img.header.set_zooms((2.0, 2.0, 2.0, float(run.t_r)))
    img.header.set_xyzt_units("mm", "sec")
    return img


def _annex_target(file_path: Path, root: Path, content_key: str) -> str:
    """Relative target of a DataLad/git-annex symlink for ``file_path``."""
    md5 = hashlib.md5(content_key.encode()).hexdigest()
    key = f"MD5E-s{int(md5[:6], 16)}--{md5}.nii.gz"
    h = hashlib.md5(key.encode()).hexdigest()
    depth = len(file_path.parent.relative_to(root).parts)
    return "/".join([".."] * depth + [".git", "annex", "objects", h[:2].upper(),
                                      h[2:4].upper(), key, key])
