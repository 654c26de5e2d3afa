"""Read a preprocessed BOLD run once, in bounded memory, inside fMRIPrep's brain mask.

``stream_masked(bold, mask)`` yields ``(t0, chunk)`` with ``chunk`` of shape
(volumes, mask voxels), reading the image volume-block by volume-block in file
order (a ``.nii.gz`` is decompressed once, front to back; nibabel's array proxy
with the file kept open). Memory: one block of ``chunk_volumes`` full volumes plus
its masked float64 copy.

Missing files are not errors here: :func:`find_inputs` returns what it found and a
note saying what is missing (a git-annex link whose content is not present, no
``*_desc-brain_mask.nii.gz`` next to the BOLD, a mask on another grid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

#: Volumes read per block (97×115×97 float32: ~4.3 MB per volume).
CHUNK_VOLUMES = 32


@dataclass(frozen=True)
class BoldInputs:
    """What BOLD mode can read for one run (``note`` says what is missing)."""

    bold: Path | None
    mask: Path | None
    note: str | None = None


def mask_for(bold: Path) -> Path:
    """fMRIPrep's brain mask next to a preprocessed BOLD (``..._desc-<x>_bold.nii[.gz]`` ->
    ``..._desc-brain_mask.nii.gz``)."""
    name = bold.name
    stem = re.sub(r"_bold\.nii(\.gz)?$", "", name)
    stem = re.sub(r"_desc-[A-Za-z0-9]+$", "", stem)
    return bold.with_name(f"{stem}_desc-brain_mask.nii.gz")


def _readable(path: Path) -> str | None:
    """None if ``path`` is a readable file, else why not."""
    if path.is_symlink() and not path.exists():
        return f"{path.name} is a link whose content is not present (git-annex/datalad: run 'datalad get')"
    if not path.exists():
        return f"{path.name} does not exist"
    if not path.is_file():
        return f"{path.name} is not a file"
    return None


def find_inputs(bold: Path) -> BoldInputs:
    """The BOLD image and its brain mask, or a note naming what is missing."""
    bold = Path(bold)
    why = _readable(bold)
    if why:
        return BoldInputs(None, None, f"BOLD not measured: {why}")
    mask = mask_for(bold)
    why = _readable(mask)
    if why:
        return BoldInputs(bold, None, f"BOLD not measured: no brain mask ({why}; expected next to the BOLD)")
    return BoldInputs(bold, mask)


def load_mask(mask_path: Path, bold_path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Boolean mask (spatial shape of the BOLD), the BOLD affine and its 4D shape.

    Raises
    ------
    ValueError
        When the mask is not on the BOLD's grid, or the BOLD is not 4D.
    """
    import nibabel as nib  # lazy: nibabel (~150 ms) only once BOLD mode reads an image

    img = nib.load(str(bold_path))
    shape = tuple(int(s) for s in img.shape)
    if len(shape) != 4:
        raise ValueError(f"{bold_path.name}: expected a 4D image, found shape {shape}")
    mimg = nib.load(str(mask_path))
    mask = np.asarray(mimg.dataobj) != 0
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    if mask.shape != shape[:3] or not np.allclose(mimg.affine, img.affine, atol=1e-4):
        raise ValueError(f"{mask_path.name} is on a different grid (shape {mask.shape}) from {bold_path.name} "
                         f"(shape {shape[:3]})")
    return mask, np.asarray(img.affine), shape


def stream_masked(bold_path: Path, mask: np.ndarray,
                  chunk_volumes: int = CHUNK_VOLUMES) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(t0, Y)`` blocks, ``Y`` of shape (volumes in block, mask voxels), float64, in file order."""
    import nibabel as nib  # lazy: nibabel (~150 ms) only once BOLD mode reads an image

    img = nib.load(str(bold_path), keep_file_open=True)
    n = int(img.shape[3])
    proxy = img.dataobj
    try:
        for t0 in range(0, n, chunk_volumes):
            block = np.asarray(proxy[..., t0:min(n, t0 + chunk_volumes)])
            yield t0, block[mask].T.astype(np.float64)
            del block
    finally:
        fh = getattr(proxy, "_opener", None)
        if fh is not None:
            try:
                fh.close_if_mine()
            except Exception:  # noqa: BLE001 - closing a cache must not hide the result
                pass
